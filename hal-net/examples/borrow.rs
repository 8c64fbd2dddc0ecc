//! Borrows a seat for some hours, keeps the record, checks it offline (`--check`: the
//! record must prove itself against the triad's CA), and (with `--return`) gives it back.
//!
//! ```sh
//! export HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1'
//! export HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem
//! cargo run -p hal-net --example borrow -- HAL 2          # borrow for two hours
//! cargo run -p hal-net --example borrow -- --check HAL     # offline: still borrowed?
//! cargo run -p hal-net --example borrow -- --return h17   # return it early
//! ```

use hal_net::client::{BorrowStore, Client, Error, Options, parse_handle};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = Client::new(Options::from_env()?)?;
    let store = BorrowStore::default_location()?;
    match args.as_slice() {
        [flag, handle] if flag == "--return" => {
            let handle = parse_handle(handle).map_err(Error::Record)?;
            let record = store
                .find(handle)?
                .ok_or_else(|| Error::Record(format!("no borrow {handle} on this machine")))?;
            println!("{:?}", client.return_borrow(&record)?);
            store.remove(handle)?;
        }
        [flag, feature] if flag == "--check" => match client.borrowed(feature)? {
            Some(borrowed) => println!(
                "{feature}: borrowed ({}), valid until {:?}, signed by server {}",
                borrowed.handle, borrowed.end, borrowed.signer
            ),
            None => println!("{feature}: not borrowed on this machine"),
        },
        [feature, hours] => {
            let hours = hours
                .parse()
                .map_err(|_| Error::Config(format!("hours: '{hours}' is not a number")))?;
            let record = client.borrow(feature, hours)?;
            println!(
                "borrowed {} of {feature}, until {:?}",
                record.handle,
                record.end()
            );
            store.add(record)?;
        }
        _ => eprintln!(
            "usage: borrow FEATURE HOURS | borrow --check FEATURE | borrow --return HANDLE"
        ),
    }
    Ok(())
}
