//! rtnetlink's errors as `std::io::Error`, the kernel's errno kept: a
//! refused request reads `File exists (os error 17)` and can be matched on
//! [`std::io::Error::raw_os_error`], not `Received a netlink error message`.

/// The kernel's answer as its errno (`EEXIST`, `EADDRNOTAVAIL`, ...); an
/// acknowledgement where an answer was due, and rtnetlink's own failures
/// (a closed connection, an unexpected message), as other errors.
pub fn to_io(error: rtnetlink::Error) -> std::io::Error {
    match error {
        rtnetlink::Error::NetlinkError(message) => match message.code {
            Some(code) => std::io::Error::from_raw_os_error(-code.get()),
            None => std::io::Error::other("unexpected acknowledgement"),
        },
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_errno_is_kept() {
        let mut refused = rtnetlink::packet_core::ErrorMessage::default();
        refused.code = std::num::NonZeroI32::new(-libc::EEXIST);
        let e = to_io(rtnetlink::Error::NetlinkError(refused));
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));

        let ack = rtnetlink::packet_core::ErrorMessage::default();
        let e = to_io(rtnetlink::Error::NetlinkError(ack));
        assert_eq!(e.raw_os_error(), None);
        assert_eq!(e.to_string(), "unexpected acknowledgement");

        let e = to_io(rtnetlink::Error::RequestFailed);
        assert_eq!(e.kind(), std::io::ErrorKind::Other);
    }
}
