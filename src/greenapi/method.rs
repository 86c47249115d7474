//! The vendor methods relinkd calls.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    GetStateInstance,
    GetAuthorizationCode,
    SendMessage,
    GetWaSettings,
    Reboot,
    Logout,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::GetStateInstance,
        Method::GetAuthorizationCode,
        Method::SendMessage,
        Method::GetWaSettings,
        Method::Reboot,
        Method::Logout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::GetStateInstance => "getStateInstance",
            Method::GetAuthorizationCode => "getAuthorizationCode",
            Method::SendMessage => "sendMessage",
            Method::GetWaSettings => "getWaSettings",
            Method::Reboot => "reboot",
            Method::Logout => "logout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}
