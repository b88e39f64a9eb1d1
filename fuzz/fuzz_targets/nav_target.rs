//! The navigation target check (`x-dstar-url`, `Error::redirect`, the template helpers): every
//! target it lets through stays on the site when a browser resolves it (a WHATWG URL parser,
//! from any page of the site), and what the navigation endpoint then parses has no scheme or
//! host of its own.
#![no_main]

use dstar_runtime::protocol::is_same_origin_path;
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|target: &str| {
    if !is_same_origin_path(target) {
        return;
    }
    for page in [
        "https://app.example/",
        "https://app.example/dir/page?x=1#top",
    ] {
        let base = Url::parse(page).unwrap();
        let resolved = base.join(target).expect("a same-origin path resolves");
        assert_eq!(
            resolved.origin(),
            base.origin(),
            "{target:?} leaves the site: {resolved}"
        );
    }
    if let Ok(uri) = target.parse::<http::Uri>() {
        assert!(
            uri.scheme().is_none() && uri.authority().is_none(),
            "{target:?}: {uri:?}"
        );
    }
});
