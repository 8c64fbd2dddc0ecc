//! A tokio application that checks two seats out at once and gives them back.
//!
//! ```sh
//! export HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1'
//! export HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem
//! cargo run -p hal-net --example checkout_async -- HAL
//! ```

use hal_net::client::{AsyncClient, Error, Options};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let feature = std::env::args().nth(1).unwrap_or_else(|| "HAL".to_string());
    let client = AsyncClient::new(Options::from_env()?)?;
    // One engine serves both requests: one connection, one heartbeat for both seats.
    let (first, second) = tokio::join!(client.checkout(&feature), client.checkout(&feature));
    let (first, second) = (first?, second?);
    println!(
        "seats {} and {} of {feature}",
        first.handle(),
        second.handle()
    );
    first.checkin().await?;
    second.checkin().await?;
    // Let the engine finish before the runtime ends.
    client.close().await;
    Ok(())
}
