pub mod browser;
pub mod child;
pub mod gate;
pub mod idp;
pub mod loadgen;
pub mod oauth1_idp;
pub mod procstat;
pub mod stack;
pub mod stubidp;
pub mod world;

/// Generates `production::NAME` and `embedded::NAME` tests for each
/// `async fn NAME(mode: Mode) -> anyhow::Result<()>` of the calling file.
#[macro_export]
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {
        mod production {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::stack::Mode::Production).await
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::$name($crate::stack::Mode::Embedded).await
                }
            )*
        }
    };
}
