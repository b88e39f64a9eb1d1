#[dstar::page("/")]
struct Home {
    count: i64,
}

fn main() {}
