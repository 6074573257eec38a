#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lvs_fuzz_targets::fou_netlink(data);
});
