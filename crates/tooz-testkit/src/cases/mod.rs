//! Every scenario, by area. Condensed from tooz's `test_coordination.py` (research/tooz.md
//! §4.3), plus what tooz never tested: fencing, loss signals, expiry, names as data.

mod cancellation;
mod elections;
mod groups;
mod lifecycle;
mod locks;
mod partitioner;

use crate::harness::Case;
use crate::harness::case;

pub(crate) const ALL: &[Case] = &[
    case!(lifecycle::stop_ends_the_coordinator, Nothing),
    case!(lifecycle::unknown_option_lists_valid_ones, Url),
    case!(lifecycle::missing_characteristics_are_refused, Nothing),
    case!(lifecycle::bad_names_are_refused, Nothing),
    case!(lifecycle::unsupported_operations_say_so, MissingFeature),
    case!(locks::acquire_and_release, Nothing),
    case!(locks::exclusive_across_coordinators, Nothing),
    case!(locks::not_reentrant_within_a_coordinator, Nothing),
    case!(locks::acquire_timeout_gives_up_in_time, Nothing),
    case!(locks::waiter_wakes_on_release, Nothing),
    case!(locks::a_timed_out_waiter_leaves_no_place_in_line, Nothing),
    case!(
        locks::a_releaser_does_not_take_the_lock_back_from_a_waiter,
        QueuedLockWaits
    ),
    case!(locks::several_locks_on_one_coordinator, Nothing),
    case!(locks::fencing_tokens_strictly_increase, Nothing),
    case!(locks::mutual_exclusion_under_contention, Nothing),
    case!(locks::dropped_guard_releases, Nothing),
    case!(locks::stop_releases_locks_and_signals_loss, Nothing),
    case!(locks::lock_is_lost_when_heartbeats_stop, LeaseBoundLocks),
    case!(locks::held_lock_survives_missed_heartbeats, HeldLocks),
    case!(locks::names_are_data, Nothing),
    case!(locks::shared_holders_coexist, SharedLocks),
    case!(locks::exclusive_and_shared_exclude, SharedLocks),
    case!(groups::create_list_delete, Groups),
    case!(groups::delete_non_empty_group, Groups),
    case!(groups::join_missing_group, Groups),
    case!(groups::join_group_create, Groups),
    case!(groups::same_member_id_cannot_join_twice, Groups),
    case!(groups::leave_errors, Groups),
    case!(groups::members_and_capabilities, Groups),
    case!(groups::capabilities_edge_cases, Groups),
    case!(groups::update_capabilities, Groups),
    case!(groups::oversized_capabilities_write_nothing, Groups),
    case!(groups::stop_leaves_groups, Groups),
    case!(groups::watch_reports_join_and_leave, Groups),
    case!(groups::watch_missing_group, Groups),
    case!(groups::member_expires_without_heartbeat, Groups),
    case!(groups::booted_out_member_is_told, Groups),
    case!(groups::names_are_data, Groups),
    case!(partitioner::ring_follows_membership, Groups),
    case!(elections::exactly_one_leader, Elections),
    case!(elections::resign_hands_over, Elections),
    case!(elections::leader_stop_elects_another, Elections),
    case!(
        elections::leadership_is_lost_when_heartbeats_stop,
        LeaseBoundElections
    ),
    case!(elections::watch_reports_leader, Elections),
    case!(
        cancellation::a_cancelled_acquire_hands_back_what_it_took,
        Nothing
    ),
    case!(
        cancellation::a_cancelled_campaign_hands_back_the_leadership,
        Elections
    ),
    case!(
        cancellation::a_cancelled_join_leaves_no_member_behind,
        Groups
    ),
    case!(
        cancellation::stop_racing_grants_leaves_nothing_immortal,
        Groups
    ),
];
