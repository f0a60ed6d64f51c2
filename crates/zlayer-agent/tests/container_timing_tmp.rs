mod container_support;
use container_support::*;
use std::time::Instant;
use zlayer_agent::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timing() {
    let t = Instant::now();
    let env = TestEnv::new();
    println!("env {:?}", t.elapsed());
    for i in 0..3 {
        let id = unique_id("t");
        let spec = sh("t", "true");
        let t = Instant::now();
        env.rt.create_container(&id, &spec).await.unwrap();
        let c = t.elapsed();
        env.rt.start_container(&id).await.unwrap();
        let s = t.elapsed();
        env.rt.wait_container(&id).await.unwrap();
        let w = t.elapsed();
        env.rt.remove_container(&id).await.unwrap();
        println!("{i}: create {c:?} start {s:?} wait {w:?} remove {:?}", t.elapsed());
    }
}
