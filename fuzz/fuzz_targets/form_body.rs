//! Any bytes posted as `application/x-www-form-urlencoded` to each form:
//! a value that passes the services' first checks, or a 4xx in the
//! contract's shape.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| socialauth_fuzz::forms(socialauth_fuzz::FORM, data));
