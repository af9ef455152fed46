//! The machine's bound for large uploads, measured in this process: what the relay must do to
//! every upload's bytes at least — decode the base64 text into an exactly sized buffer and
//! hash the result with SHA-256, with the relay's own functions (`base64_simd::STANDARD`,
//! `sha2::Sha256`) — on one core, scaled to all of them.
//!
//! The scalar decode of the `base64` crate, which the relay used before and the first
//! figures were measured with, is timed too and reported beside it, so that old and new
//! figures can be compared; the bound itself is what the relay does now.
//!
//! Both wall time and this thread's CPU time are taken: on a shared machine a thread can be
//! descheduled mid-measurement, which inflates wall time but not CPU time.
//!
//! [`socket_floor`] adds what any server receiving the upload over TCP must also do: read the
//! text out of a loopback socket (the relay's read size), then decode and hash it — the least
//! CPU a relay on this machine could spend per upload, against which its own overhead shows.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as SCALAR;
use nix::time::{ClockId, clock_gettime};
use sha2::{Digest, Sha256};

/// Timed repetitions; medians are reported (the machine is shared and noisy).
const ROUNDS: usize = 25;
/// First rounds fault the buffers in and warm the caches; they are not counted.
const WARMUP_ROUNDS: usize = 3;

/// One core's time to decode and hash one payload, and the bound over all cores.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Wall time, median: the relay's SIMD decode, and SHA-256.
    pub decode_secs: f64,
    pub hash_secs: f64,
    /// This thread's CPU time for decode + hash, median.
    pub cpu_secs: f64,
    /// Wall time of the `base64` crate's scalar decode of the same text, median.
    pub scalar_decode_secs: f64,
    /// CPU time of [`socket_floor`]: receive from a socket, decode, hash (`None`: it failed).
    pub floor_cpu_secs: Option<f64>,
    pub cores: usize,
}

impl Bound {
    /// Uploads per second all cores could decode and hash if they did nothing else.
    pub fn uploads_per_sec(&self) -> f64 {
        self.cores as f64 / (self.decode_secs + self.hash_secs)
    }

    /// The same with the scalar decoder: the bound as the issue first measured it.
    pub fn scalar_uploads_per_sec(&self) -> f64 {
        self.cores as f64 / (self.scalar_decode_secs + self.hash_secs)
    }

    /// CPU time of decode + hash with the scalar decoder (its decode is CPU-bound, so the
    /// wall-time difference of the two decoders carries over).
    pub fn scalar_cpu_secs(&self) -> f64 {
        self.cpu_secs + (self.scalar_decode_secs - self.decode_secs)
    }
}

/// Measures decode and hash of a `size`-byte payload on the calling thread.
pub fn measure(size: usize, cores: usize) -> Bound {
    let payload: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let text = SCALAR.encode(&payload);
    let (mut decode, mut hash, mut cpu, mut scalar) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut out = vec![0u8; text.len() / 4 * 3];
    for _ in 0..ROUNDS + WARMUP_ROUNDS {
        let (start, cpu_start) = (Instant::now(), thread_cpu());
        let decoded = base64_simd::STANDARD
            .decode(text.as_bytes(), base64_simd::Out::from_slice(&mut out))
            .map_or(0, |d| d.len());
        let decoded_at = Instant::now();
        let digest = Sha256::digest(&out[..decoded]);
        let (hashed_at, cpu_end) = (Instant::now(), thread_cpu());
        let _ = std::hint::black_box(digest);
        decode.push(decoded_at - start);
        hash.push(hashed_at - decoded_at);
        cpu.push(cpu_end.saturating_sub(cpu_start));

        let start = Instant::now();
        let decoded = SCALAR.decode_slice(&text, &mut out);
        scalar.push(start.elapsed());
        let _ = std::hint::black_box(decoded);
    }
    Bound {
        decode_secs: median(&mut decode[WARMUP_ROUNDS..]),
        hash_secs: median(&mut hash[WARMUP_ROUNDS..]),
        cpu_secs: median(&mut cpu[WARMUP_ROUNDS..]),
        scalar_decode_secs: median(&mut scalar[WARMUP_ROUNDS..]),
        floor_cpu_secs: socket_floor(text.as_bytes(), Sha256::digest(&payload).into())
            .map(|cpu| cpu.as_secs_f64())
            .ok(),
        cores,
    }
}

/// The relay's socket reads are this large (hyper's largest read buffer, seen with `strace`).
const READ_SIZE: usize = 408 * 1024;

/// CPU time, median, of a thread that receives a payload's base64 `text` from a loopback TCP
/// socket in [`READ_SIZE`] reads and decodes and hashes it as it arrives, as the relay does,
/// without HTTP or anything else; each round's SHA-256 must be `expected`. A second thread sends.
///
/// # Errors
/// When the loopback socket cannot be set up, or a round decodes to another hash.
pub fn socket_floor(text: &[u8], expected: [u8; 32]) -> std::io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    let rounds = ROUNDS + WARMUP_ROUNDS;
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| -> std::io::Result<()> {
            let mut stream = TcpStream::connect(address)?;
            for _ in 0..rounds {
                stream.write_all(text)?;
            }
            Ok(())
        });
        let cpu = receive_rounds(&listener, text.len(), rounds, expected)?;
        sender.join().map_err(|_| std::io::Error::other("the floor's sender panicked"))??;
        Ok(cpu)
    })
}

/// The receiving side of [`socket_floor`]: `rounds` texts of `len` bytes from the one
/// connection `listener` accepts.
fn receive_rounds(listener: &TcpListener, len: usize, rounds: usize, expected: [u8; 32]) -> std::io::Result<Duration> {
    let (mut stream, _) = listener.accept()?;
    let mut read_buffer = vec![0u8; READ_SIZE];
    let mut out = vec![0u8; len / 4 * 3];
    let mut cpu = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let cpu_start = thread_cpu();
        let (mut received, mut pending, mut written) = (0, 0, 0);
        let mut hasher = Sha256::new();
        while received < len {
            let want = (len - received).min(READ_SIZE - pending);
            let n = stream.read(&mut read_buffer[pending..pending + want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            received += n;
            let available = pending + n;
            // Whole quads now; the text's last quad (it may carry padding) once all is in.
            let take = if received == len { available } else { available / 4 * 4 };
            // In 64 KiB blocks, as the relay: each block's output is hashed while in cache.
            for block in read_buffer[..take].chunks(64 * 1024) {
                let decoded = base64_simd::STANDARD
                    .decode(block, base64_simd::Out::from_slice(&mut out[written..]))
                    .map_err(|_| std::io::Error::other("the floor's text did not decode"))?
                    .len();
                hasher.update(&out[written..written + decoded]);
                written += decoded;
            }
            read_buffer.copy_within(take..available, 0);
            pending = available - take;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        cpu.push(thread_cpu().saturating_sub(cpu_start));
        if digest != expected {
            return Err(std::io::Error::other("the floor's hash is wrong"));
        }
    }
    Ok(Duration::from_secs_f64(median(&mut cpu[WARMUP_ROUNDS..])))
}

/// CPU time of the calling thread (zero if the clock is unavailable).
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

fn median(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64()
}
