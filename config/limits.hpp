// Every fixed limit of Canopy, named once, each with the reason it has the value it has.
//
// Values a deployment may want to change (body size, depth, retention, thread counts…) are also
// fields of config::Options, whose defaults come from here. The static_asserts at the bottom state
// how the limits relate; change one and the compiler tells you what else must move.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace canopy::limits {

// --- HTTP ---------------------------------------------------------------------------------------
// Contract default: bodies over 1 MiB get 413. A usage:batch of 10,000 events of ~100 bytes fits; with
// UUID ids (~140 bytes an event) about 7,500 do (docs/openapi.yaml, usage:batch).
inline constexpr std::size_t body_bytes_default = 1u << 20;
// Hard ceiling for the configurable body limit: a batch never needs more, and the parser buffers it whole.
inline constexpr std::size_t body_bytes_max = 16u << 20;
// Request line plus headers; browsers send about 2 KiB, 16 KiB leaves room for long tokens.
inline constexpr std::size_t header_bytes_max = 16u << 10;
// A connection's read buffer. Beast reads at most the buffer's free room per recvmsg (never less than
// 512 bytes) and the parser empties it as it goes, so a buffer left at its first size read a 100 KB
// batch in about 200 calls. It holds a single-event request and its headers; for a larger body it
// grows to the body's Content-Length, up to the most Beast reads in one call (64 KiB), and shrinks
// back once the request is read.
inline constexpr std::size_t read_buffer_bytes_initial = 4u << 10;
inline constexpr std::size_t read_buffer_bytes_max = 64u << 10;
// A client has this long to send a whole request once it starts; slowloris connections are cut.
inline constexpr std::chrono::seconds request_read_timeout{30};
// An idle keep-alive connection is closed after this.
inline constexpr std::chrono::seconds keep_alive_idle_timeout{60};
// A request whose answer does not come back from the actors in this time gets 503; the work may still
// complete, and a retry with the same idempotency key returns its result.
inline constexpr std::chrono::seconds request_deadline{10};
// An org actor waits this long for the writer to confirm a commit. The writer never drops a record,
// so running out of it means storage has hung: the process stops rather than guess (see writer.hpp).
inline constexpr std::chrono::seconds writer_reply_timeout{60};
// Open connections; past it new ones are accepted and closed at once, so the listener never stalls.
inline constexpr std::size_t connections_default = 20000;
inline constexpr std::size_t connections_max = 100000;
// The least a deployment may configure, and the least the server starts with when its file-descriptor
// limit is low (net/fd_budget.hpp): below it a server is no use to anyone.
inline constexpr std::size_t connections_min = 16;
// Descriptors kept back from connections for everything else the process opens: stdio, LMDB's files,
// the Asio and CAF reactors (epoll, eventfd, timerfd, pipes), the listener, one outgoing SMTP and one
// webhook conversation at a time (a socket and libcurl's resolver each), backups and outbox files.
// 17 are open at idle (measured); the rest is room for those that come and go and for libraries. Redis
// keeps 32.
inline constexpr std::size_t fds_reserved = 128;
// After accept fails for want of a descriptor or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the connection
// stays in the backlog, so retrying at once fails at once: a busy loop. Retrying after this costs ten
// wake-ups a second, and a waiting connection is taken within it of a descriptor coming free.
inline constexpr std::chrono::milliseconds accept_retry_delay{100};

// --- API shape ----------------------------------------------------------------------------------
inline constexpr std::size_t page_size_default = 50;   // contract
inline constexpr std::size_t page_size_max = 500;      // contract
inline constexpr std::size_t usage_batch_events_max = 10000;  // contract
inline constexpr std::size_t name_bytes_max = 200;     // org and user names
inline constexpr std::size_t email_bytes_max = 254;    // RFC 5321 path limit
// Customization text (address) and URLs (logo, terms, privacy): generous for real values, small
// enough that an org's state stays a few KiB.
inline constexpr std::size_t address_bytes_max = 1000;
inline constexpr std::size_t url_bytes_max = 2048;

// --- usage analytics ------------------------------------------------------------------------------
// Contract: a usage report covers at most 366 days (a leap year).
inline constexpr std::size_t usage_range_days_max = 366;

// --- cycles -------------------------------------------------------------------------------------
// How often the cycle watcher (actors/cycle_watcher.hpp) looks for a new cycle: a paused org is
// resumed, and told so, within this of the month turning.
inline constexpr std::chrono::seconds cycle_watch_interval{1};

// --- WebSocket stream -----------------------------------------------------------------------------
// Contract: at most one push per org per connection per 50 ms; the newest state wins.
inline constexpr std::chrono::milliseconds stream_coalesce_window{50};
// Largest client message: a usage event is well under 1 KiB.
inline constexpr std::size_t stream_message_bytes_max = 64u << 10;
// Messages a connection may have waiting to be written, besides one balance push per subscribed org
// (a waiting push is replaced by a newer one), before it counts as a slow consumer and is closed with
// 1008: snapshots, alerts and usage results a healthy reader takes in milliseconds; 1024 small messages
// bound its memory to a few hundred KiB. Configurable (stream_queue_messages) so tests can provoke it.
inline constexpr std::size_t stream_queue_messages_default = 1024;
inline constexpr std::size_t stream_queue_messages_max = 1u << 20;
// A connection silent this long is pinged at half of it, and closed if the pong does not come.
inline constexpr std::chrono::seconds stream_idle_timeout{60};
// Time for the WebSocket opening and closing handshakes.
inline constexpr std::chrono::seconds stream_handshake_timeout{30};

// --- alerts and webhooks -----------------------------------------------------------------------------
// Spend thresholds per org: the contract's example has three; ten is plenty for any dashboard.
inline constexpr std::size_t alert_thresholds_max = 10;
// Above 100 % is meaningful only to say "over the limit" once it has been raised past spend; cap it.
inline constexpr std::uint16_t alert_threshold_percent_max = 1000;
// Webhooks per org (each is state every read of the org copies).
inline constexpr std::size_t webhooks_per_org_max = 20;
inline constexpr std::size_t webhook_url_bytes_max = 2048;
// Threads for the DNS lookups that vet webhook URLs when they are registered (net/lookup_pool.hpp).
inline constexpr std::size_t lookup_threads = 2;
// Contract: deliveries are retried with exponential backoff for 24 hours.
inline constexpr std::chrono::hours webhook_retry_for{24};
// The first retry comes after this; each next one after twice as long, at most webhook_retry_max.
inline constexpr std::chrono::seconds webhook_retry_first{1};
inline constexpr std::chrono::seconds webhook_retry_max{3600};
// One delivery attempt (connect, send, answer) may take at most this long.
inline constexpr std::chrono::seconds webhook_timeout{10};
// How often the dispatcher looks for deliveries that are due.
inline constexpr std::chrono::milliseconds webhook_poll_interval{200};
// Deliveries attempted per poll, so one poll never runs for long.
inline constexpr std::size_t webhook_batch_max = 64;
// The response body kept with a delivery attempt, for debugging receivers.
inline constexpr std::size_t webhook_response_bytes_kept = 512;

// --- members, invitations, keys -------------------------------------------------------------------
// Contract default: an invitation link is good for 7 days; configurable (invitation_expiry_hours).
inline constexpr std::uint32_t invitation_expiry_hours_default = 7 * 24;
inline constexpr std::uint32_t invitation_expiry_hours_max = 90 * 24;
// Pending invitations an org holds at once (expired ones are dropped as new ones are made). They live
// in the org's state, which every read copies: a bound keeps that small. Revoke or let expire to free.
inline constexpr std::size_t pending_invitations_per_org_max = 200;
// API keys per org, for the same reason; rotating keys means revoking old ones.
inline constexpr std::size_t api_keys_per_org_max = 100;
// An invitation email is retried this many times (delivery is asynchronous to the 201), with the
// delay doubling from the first.
inline constexpr unsigned mail_attempts_max = 5;
inline constexpr std::chrono::milliseconds mail_retry_first{500};
// One SMTP conversation (connect, send, quit) may take at most this long.
inline constexpr std::chrono::seconds smtp_timeout{30};
inline constexpr std::size_t event_id_bytes_max = 128; // client idempotency keys
inline constexpr std::size_t event_type_bytes_max = 64;
inline constexpr std::size_t idempotency_key_bytes_max = 255;

// --- organizations ------------------------------------------------------------------------------
// Contract default: 4 levels below a root. The configured value may not exceed depth_max, because
// a charge walks the chain and each level is one actor hop (latency) and one entry in its record.
inline constexpr std::uint32_t depth_default = 4;
inline constexpr std::uint32_t depth_max = 8;
inline constexpr std::size_t chain_orgs_max = depth_max + 1;

// --- money --------------------------------------------------------------------------------------
// One event, grant or top-up is at most 1e12 micros (one million dollars). Sums of up to 2^20 such
// amounts stay far below INT64_MAX (9.2e18), so ledger arithmetic cannot overflow in practice; it
// is still checked, and an overflow is refused, not wrapped.
inline constexpr std::int64_t amount_micros_max = 1'000'000'000'000;
inline constexpr std::int64_t free_credits_micros_default = 5'000'000;  // contract
inline constexpr std::uint64_t quantity_max = 1'000'000'000'000;

// --- idempotency --------------------------------------------------------------------------------
inline constexpr std::uint32_t idempotency_retention_days_min = 35;  // issue: at least 35 days
inline constexpr std::uint32_t idempotency_retention_days_default = idempotency_retention_days_min;
inline constexpr std::uint32_t idempotency_retention_days_max = 3650;
// Ids older than the retention are erased by a sweep over the event-id index (persistence/id_purge.hpp)
// that starts this often (service-clock seconds): an id is forgotten at most this long after it may be.
inline constexpr std::int64_t id_purge_interval_seconds = 3600;
// Index rows a sweep examines per writer commit: a read of ~100 us, so a sweep never delays a commit
// noticeably (rows from before rows carried their time also read their journal record, once per
// record), and an idle writer still sweeps ~10^6 rows a second (commits without an erase have nothing
// to fsync).
inline constexpr std::size_t id_purge_rows_per_commit = 2048;

// --- journal trim (persistence/audit_base.hpp, journal_trim.hpp) -------------------------------
// What one commit of the audit base folds at most: orgs held in memory (a base row is ~0.5-1 KB in
// memory; 20,000 of them ~20 MB) and bytes of journal read in one read transaction (a long read
// keeps LMDB from reusing the pages freed meanwhile). 64 MiB is ~1.3 million batch events or ~45,000
// single charges, more than a checkpoint interval of either at the rates in docs/benchmarks.md, so a
// round is normally one commit and each org's row is written once a round.
inline constexpr std::size_t audit_base_orgs_per_commit_max = 20000;
inline constexpr std::size_t audit_base_bytes_per_commit = 64u << 20;
// Journal records one writer commit erases at most. An erase is a B-tree delete of an 8-byte key on
// the journal's first pages, ~0.3 us: 4,096 of them add ~1 ms to the commit they ride in, and a
// commit a millisecond erases 4 million records a second, far more than are journaled.
inline constexpr std::size_t journal_trim_records_per_commit = 4096;
// A backup's hold on the trim (persistence/trim_hold.hpp) found unlocked is taken for one still being
// placed (created, not yet locked: microseconds) for this long, and for one whose copy died after.
inline constexpr std::int64_t trim_hold_lock_grace_seconds = 60;
// `canopy check` beside a live server reads the audit part after the journal part; a base committed
// between the two reads can be past the journal read, and the audit reads all again. Such a window is
// microseconds wide, so a few attempts; a base that stays past the journal is reported.
inline constexpr unsigned audit_view_attempts_max = 5;

// --- persistence --------------------------------------------------------------------------------
// Group commit: a commit takes every record waiting when it starts (at most the records maximum), so
// the window adapts to the load: it lasts as long as the previous commit took. One fsync per window
// is what lets LMDB carry hundreds of thousands of events a second. A fixed extra delay only adds
// latency: 1,000 us (the default until measured) against 0 gave ~5,800 vs ~7,200 single charges/s and
// ~6% fewer batch events/s (docs/benchmarks.md). It stays configurable (commit_window_us).
inline constexpr std::chrono::microseconds commit_window_default{0};
// The longest extra delay an operator may set: past a tenth of a second every acknowledgement waits
// longer than a client's patience for a charge.
inline constexpr std::chrono::microseconds commit_window_max{100'000};
inline constexpr std::size_t commit_window_records_max = 4096;
// A commit's ops for one table are merged run by run when their ascending runs are this long on
// average, and sorted outright when shorter (persistence/lmdb_store.cpp): on random keys, runs of one
// or two, merging pairwise cost more than std::stable_sort (2,048 keys: 306 against 236 us).
inline constexpr std::size_t commit_sort_run_length_min = 8;
// The writer keeps the key and value buffers of this many ops from one commit to the next
// (persistence/write_ops.hpp): more than a busy commit of batches holds (16 batches of 1,000 events,
// ~16,000 ops). A commit of thousands of 10,000-event batches is possible, and after one the writer
// gives back all but these (~100 bytes each) instead of keeping gigabytes for the rest of its life.
inline constexpr std::size_t write_ops_kept_max = 1u << 16;
// An org's state, an accepted event id and a usage bucket are written to LMDB once they have waited
// this long (checkpoints are incremental: persistence/materializer.hpp); recovery replays about this
// much journal. Since checkpoints commit behind the acknowledgements (the state part), a longer
// interval costs only memory and replay: single charges' ids land on random leaves of the index, and
// a checkpoint of five seconds' ids shares each leaf among more of them than one of a second's. 5 s
// against 1 s, 20 s runs: ~1,860 bytes written per single charge against ~2,970, p99 11.2-12.7 against
// 15.7-17.7 ms (docs/benchmarks.md). 10 s, with the sort off the writer's thread, wrote 6-9% less
// per single charge in 20 s runs at the same p99 and rate: not worth twice the replay and the pending
// memory. That memory is bounded by pending_id_rows_max, which starts a checkpoint early.
inline constexpr std::chrono::milliseconds checkpoint_interval_default{5'000};
// The longest an operator may set: ten minutes of journal to replay at a restart, and of accepted
// event ids and dirty orgs held in memory until written.
inline constexpr std::chrono::milliseconds checkpoint_interval_max{600'000};
// The slice bounds below (orgs, event-id rows, buckets "per commit") are per writer window. They were
// measured while the slices shared the acknowledgements' commits; since the state part has commits of
// its own (actors/state_committer.hpp), which take every window's slices waiting at once, they pace a
// checkpoint over the windows rather than bound what one commit holds.
// Org snapshots one commit carries at most. A whole checkpoint in one commit (15,000 orgs, ~4 MB)
// held every charge behind it for 20-30 ms; 256 snapshots add well under a millisecond to a commit,
// and at a few hundred commits a second still write ~100,000 orgs a second, far more than get dirty.
inline constexpr std::size_t checkpoint_orgs_per_commit_max = 256;
// Event-id index rows one commit carries at most while a checkpoint writes the rows accepted since
// the last (persistence/pending_id_rows.hpp), in key order. 2,048 rows add about a millisecond to a
// commit (a slice of 8,192 random ids in journal order rewrote thousands of leaves in one commit:
// single charges' p99.9 reached 150 ms), and at several hundred commits a second a checkpoint still
// writes about a million rows a second; past that the pending bound below takes over.
inline constexpr std::size_t checkpoint_id_rows_per_commit_max = 2048;
// ... unless the checkpoint is so large that it would take more commits than this: then a slice is
// this share of it. At 500,000 batch events a second fixed slices of 2,048 fell behind, and the
// catch-up below wrote a million rows in one commit (a 446 ms stall); 64 slices of ~8,000 did not.
inline constexpr std::size_t checkpoint_id_slices_min = 64;
// Checkpoints of event-id rows up to this many are sorted by key when they begin, on a thread of their
// own (persistence/pending_id_rows.hpp): ~34 ms of CPU for 131,072 random ids, ~150 ms for this many,
// once a checkpoint. Five seconds of single charges stay sorted up to ~100,000 a second (and so do
// batches up to that rate, for up to that CPU). Larger checkpoints are bursts of batches, whose ids
// come in runs already in order: sorting them would cost CPU that batch ingestion, bound by it, has
// not got to spare.
inline constexpr std::size_t pending_id_rows_sorted_max = 1u << 19;
// Usage bucket rows one commit carries at most while a checkpoint writes the buckets counted since
// the last (persistence/usage_rollup.hpp), in key order. At 10,000 charges a second over 15,000 orgs
// an interval dirties ~20,000 buckets. Slices of 4,096 put a p99 of 18-20 ms on single charges
// against 15-16 ms with 1,024 (the same leaves are written either way, just spread over more commits).
inline constexpr std::size_t checkpoint_bucket_rows_per_commit_max = 1024;
// Rows waiting for the index beyond which a checkpoint of them begins before the interval is up, and
// a checkpoint in progress is finished in one commit (once sorted): bounds their memory (~60 bytes a row, and the
// origin actors keep the accepted events until indexed) under bursts the interval did not foresee.
inline constexpr std::size_t pending_id_rows_max = 1'000'000;
// An idle writer looks for orgs due this often per checkpoint interval (so none waits more than a
// quarter interval past due), and never more often than the poll floor.
inline constexpr unsigned checkpoint_idle_polls_per_interval = 4;
inline constexpr std::chrono::milliseconds checkpoint_idle_poll_min{1};
// Orgs the writer keeps in memory after writing their snapshot, so the next record to touch one
// needs no read and decode (a few hundred bytes to a few KB each): the clean ones are forgotten past
// this. Dirty orgs are never forgotten; they are bounded by the checkpoint interval.
inline constexpr std::size_t materializer_orgs_cached_max = 50'000;
// Usage buckets the writer keeps in memory to spare a read per charge (~200 bytes each): the clean
// ones are forgotten past this, since the store has them; dirty ones wait for their checkpoint.
inline constexpr std::size_t usage_rollup_cache_max = 100'000;
// LMDB map size: the largest the database file may grow. Only address space until used, and LMDB
// cannot grow it while readers are open, so it is reserved generously once.
inline constexpr std::size_t lmdb_map_bytes_initial = std::size_t{256} << 30;
// Readers at once: every I/O thread, CAF worker and the audit may hold a read transaction.
inline constexpr unsigned lmdb_readers_max = 512;
// Batches of state-part ops (checkpoint slices) waiting for the state committer beyond which the
// writer waits for it (actors/state_committer.hpp): the checkpoints then fall back to the pace the
// state part's commits keep, and the writer's memory stays bounded (a batch is one window's slices,
// at most a few MB). The committer takes every batch waiting into one commit; under batches a state
// commit (10-100 ms) spans 5-30 writer windows, and 8 made the writer wait now and then.
inline constexpr std::size_t state_batches_waiting_max = 32;
// Ops one state commit takes at most when it takes several waiting batches (a single batch may be
// larger). A journal commit that meets a state commit's fsync on the disk waits for it: this bounds
// how long.
inline constexpr std::size_t state_commit_ops_max = 16'384;
// Emptied batches' op buffers the state committer keeps for the writer to fill again. A coalesced
// batch's buffers hold up to limits::write_ops_kept_max ops each: two bound what a burst leaves held.
inline constexpr std::size_t state_buffers_kept = 2;
// Rows per commit when a data folder from before the parts has its state tables moved into the
// state part (persistence/lmdb_store.cpp): a few MB a commit however large the tables are.
inline constexpr std::size_t legacy_rows_per_commit = 1u << 16;

// --- threads ------------------------------------------------------------------------------------
inline constexpr unsigned io_threads_default = 1;       // measured on 2 cores: see docs/benchmarks.md
inline constexpr unsigned actor_threads_default = 2;
inline constexpr unsigned threads_max = 64;

static_assert(body_bytes_default <= body_bytes_max);
static_assert(page_size_default <= page_size_max);
static_assert(depth_default <= depth_max);
static_assert(connections_min <= connections_default && connections_default <= connections_max);
static_assert(amount_micros_max < INT64_MAX / (std::int64_t{1} << 20));
static_assert(commit_window_records_max >= 1);
static_assert(std::int64_t{alert_threshold_percent_max} * amount_micros_max < INT64_MAX / 2);  // alerts.cpp: reached()

}  // namespace canopy::limits
