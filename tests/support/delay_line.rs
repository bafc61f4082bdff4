//! The one delay line between p11-kit's client module and `p11-kit server`, shared by the
//! benchmark's relay (benches/p11_relay.rs, which includes this file) and the controller tests
//! (`relay::DelayRelay`): every client→server chunk is stamped when read and forwarded at
//! stamp + `delay`, in order, so concurrent calls overlap (latency, not a rate cap); answers go
//! back at once. `seen` is shown each client→server chunk as it is read (the bench counts
//! PKCS#11 calls with it).

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Relays one client connection to `upstream` until either side closes.
pub async fn delay_line(
    client: UnixStream,
    upstream: &Path,
    delay: Duration,
    mut seen: impl FnMut(&[u8]) + Send + 'static,
) -> std::io::Result<()> {
    let server = UnixStream::connect(upstream).await?;
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    // client → delay line: stamp each chunk as it is read.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = client_rd.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            seen(&buf[..n]);
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                return Ok(());
            }
        }
    });
    // delay line → server: each chunk at its due time, in order.
    let writer = tokio::spawn(async move {
        while let Some((due, mut chunk)) = rx.recv().await {
            // A deadline already passed is not slept on: the timer would wait for its next tick.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            // Whatever else is due goes in the same write (p11-kit writes a message in three).
            while let Ok((due, more)) = rx.try_recv() {
                chunk.extend_from_slice(&more);
                if due > Instant::now() {
                    tokio::time::sleep_until(due).await;
                }
            }
            server_wr.write_all(&chunk).await?;
        }
        server_wr.shutdown().await
    });
    // server → client, undelayed.
    let back = tokio::io::copy(&mut server_rd, &mut client_wr).await;
    reader.abort();
    writer.abort();
    back.map(|_| ())
}
