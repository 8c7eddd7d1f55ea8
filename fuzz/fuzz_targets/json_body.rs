//! Any bytes posted as JSON to each form (djoser callback, `/social-auth`,
//! token login, user update, refresh campaign): a value that passes the
//! services' first checks, or a 4xx in the contract's shape.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| socialauth_fuzz::forms(socialauth_fuzz::JSON, data));
