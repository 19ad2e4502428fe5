//! Closed-loop HTTP load for the benchmarks: `conns` keep-alive
//! connections, each sending its next GET as soon as the previous answer
//! has been read.

use std::time::{Duration, Instant};

/// The longest one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// GETs `url` with a bearer `token` in a closed loop on `conns` keep-alive
/// connections for `secs`; `(requests per second, latencies in ms sorted,
/// errors)`. A request counts when it answers 2xx and its whole body is
/// read within [`REQUEST_TIMEOUT`]; anything else is an error.
pub async fn get_load(url: &str, token: &str, conns: usize, secs: u64) -> (f64, Vec<f64>, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while tokio::time::Instant::now() < deadline {
                let t = Instant::now();
                let r = client
                    .get(&url)
                    .bearer_auth(&token)
                    .timeout(REQUEST_TIMEOUT)
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.expect("load task");
        all.extend(lat);
        errors += e;
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (rps, all, errors)
}
