use super::*;

#[tokio::test]
async fn one_node_waits_for_its_holder() {
    let locks = Arc::new(NodeLocks::default());
    let held = locks.lock("n1").await;
    let l2 = Arc::clone(&locks);
    let waiter = tokio::spawn(async move { l2.lock("n1").await });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "a second holder of n1 got in");
    drop(held);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
}
