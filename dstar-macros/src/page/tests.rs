//! Snapshots of expansions, pretty-printed as the code a person would read in `cargo expand`.

use proc_macro2::TokenStream;
use quote::quote;

fn expand(args: TokenStream, item: TokenStream) -> String {
    let output = super::expand(args, item);
    let file = syn::parse2(output).expect("the expansion is a list of items");
    prettyplease::unparse(&file)
}

#[test]
fn stateless_page() {
    let expanded = expand(
        quote!("/counter/{id}", template = "counter.html"),
        quote! {
            impl Counter {
                async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
                    Ok(Counter { count: mount.param_as("id")? })
                }

                fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
                    view.render(self)
                }

                #[event]
                async fn increment(&mut self, cx: &mut Ctx<'_>, signals: Count) -> dstar::Result<()> {
                    cx.patch_signals(&Count { count: signals.count + 1 })
                }

                fn helper(&self) -> i64 {
                    self.count
                }
            }
        },
    );
    insta::assert_snapshot!(expanded);
}

#[test]
fn stateless_page_without_events() {
    let expanded = expand(
        quote!(path = "/about", title = "About"),
        quote! {
            impl About {
                async fn mount(_mount: &mut Mount<'_>) -> dstar::Result<Self> {
                    Ok(About)
                }

                fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
                    view.render(())
                }
            }
        },
    );
    insta::assert_snapshot!(expanded);
}

#[test]
fn live_page() {
    let expanded = expand(
        quote!("/chat/{room}", live, group = "main", layout = "app.html"),
        quote! {
            impl Chat {
                async fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
                    mount.subscribe("chat");
                    Ok(Chat::default())
                }

                fn render(&self, view: &View<'_>) -> dstar::Result<Html> {
                    view.render(self)
                }

                #[event(name = "send")]
                async fn send_message(&mut self, cx: &mut Ctx<'_>, draft: Draft) -> dstar::Result<()> {
                    cx.publish("chat", draft.text);
                    Ok(())
                }

                #[event]
                async fn clear(&mut self, _cx: &mut Ctx<'_>) -> dstar::Result<()> {
                    self.lines.clear();
                    Ok(())
                }

                async fn info(&mut self, _cx: &mut Ctx<'_>, message: Message) -> dstar::Result<()> {
                    self.lines.extend(message.get::<String>().cloned());
                    Ok(())
                }

                async fn terminate(&mut self) {
                    self.lines.clear();
                }
            }
        },
    );
    insta::assert_snapshot!(expanded);
}

#[test]
fn errors_keep_the_impl_and_report_everything() {
    let expanded = expand(
        quote!("users/{id}", group = "main", colour = "red"),
        quote! {
            impl Broken {
                fn mount(mount: &mut Mount<'_>) -> dstar::Result<Self> {
                    Ok(Broken)
                }

                #[event]
                async fn save(&self, cx: &mut Ctx<'_>) -> dstar::Result<()> {
                    Ok(())
                }
            }
        },
    );
    insta::assert_snapshot!(expanded);
}

#[test]
fn not_an_impl_block() {
    let expanded = expand(
        quote!("/"),
        quote!(
            struct Home;
        ),
    );
    insta::assert_snapshot!(expanded);
}
