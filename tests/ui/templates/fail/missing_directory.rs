fn main() {
    let _templates = dstar::templates!("no-such-directory");
}
