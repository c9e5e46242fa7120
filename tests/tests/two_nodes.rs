//! The two-node scenarios of `kaisui_integration_tests::scenarios`, once per
//! transport.

/// Instantiate every scenario for each `module => transport kind` pair.
/// A new transport needs one more line in the invocation below.
macro_rules! two_node_suite {
    ($($module:ident => $kind:expr),+ $(,)?) => {$(
        mod $module {
            use kaisui_integration_tests::harness::*;
            use kaisui_integration_tests::scenarios;

            two_node_suite!(@scenarios $kind;
                session_authenticates,
                named_actors_are_announced,
                process_groups_propagate,
                casts_arrive_both_ways,
                calls_return_both_ways,
                silent_remote_call_times_out,
                wrong_cookie_is_refused,
                an_actor_can_call_back_the_peer_whose_burst_it_is_handling,
            );
        }
    )+};
    (@scenarios $kind:expr; $($scenario:ident),+ $(,)?) => {$(
        #[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
        async fn $scenario() {
            let kind = $kind;
            scenarios::$scenario(&kind).await;
        }
    )+};
}

two_node_suite! {
    native => Native,
    memory => Memory::default(),
    dp_tcp => DpTcpKind,
}
