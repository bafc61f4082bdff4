use super::*;

#[test]
fn names() {
    assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
    assert_eq!(
        ckr_name(RvError::UserAlreadyLoggedIn),
        "CKR_USER_ALREADY_LOGGED_IN"
    );
    assert_eq!(function_name(Function::Login), "C_Login");
}

#[test]
fn classes() {
    assert_eq!(classify(RvError::DeviceError), ErrorClass::Device);
    assert_eq!(classify(RvError::SessionHandleInvalid), ErrorClass::Session);
    assert_eq!(classify(RvError::PinLocked), ErrorClass::Pin);
    assert_eq!(classify(RvError::DataLenRange), ErrorClass::Request);
}
