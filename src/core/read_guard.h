// ReadGuard: tells core whether a job record read from the store is still current when the read
// comes back to the core thread.
//
// Core keeps only live jobs. A decision about a job core no longer holds (replay a dead job,
// cancel one that may have finished) needs the job's stored record, which a reader thread reads
// so that core never waits on disk. By the time the record reaches core again, the row may have
// changed. Core is the store's only writer, and it writes a job's row only while it holds the job,
// so exactly two things can make such a read stale:
//
//   1. the job came into core and left it again while the read was in flight (it was replayed,
//      ran and finished; core drops a job when the batch with its terminal write commits), so
//      the read may have seen the row from before;
//   2. a retention purge, appended to a batch the read may not have seen (its seq is above the
//      durable seq at the time the read was asked for), deleted or will delete the row;
//   3. core deleted that one row (a bulk delete, POST /v1/jobs:delete) in such a batch.
//
// The guard remembers exactly these: the newest batch holding a purge (one number), the ids
// core dropped while at least one read was open (forgotten as soon as no open read is older than
// them, and capped: past the cap the oldest are forgotten and every read that could have needed
// them is treated as stale), and the ids core deleted with the batch that holds each delete
// (forgotten once that batch is durable and no open read began before it was; capped too: past
// the cap the oldest delete counts as a purge of its batch, which makes every older read stale).
// A stale answer is read again; the caller bounds how often.
//
//   Open(durable_seq) ---- reader thread reads the store ----> MaybeStale(ticket, id)?
//        |                                                       no: decide from the record
//        |   OnEvicted(id), OnPurge(seq) meanwhile               yes: read again after
//        v                                                            last_purge_seq() is durable
//   Close(ticket) once every record of the read is decided
//
// Owner: the Scheduler, core thread only. Pure: no I/O, no clock. O(log open reads) per call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/job.h"

namespace ym {

class ReadGuard {
 public:
  // One read in flight. Plain value: copied into the read's closure and handed back.
  struct Ticket {
    std::uint64_t id = 0;           // 0: not a ticket
    std::uint64_t durable_seq = 0;  // every batch <= this was committed before the read began
    std::uint64_t since = 0;        // eviction log position when the read was asked for
  };

  // `max_remembered`: most evicted ids kept for open reads before the oldest are forgotten.
  explicit ReadGuard(std::size_t max_remembered = 1 << 16) : max_remembered_(max_remembered) {}

  // A read is about to be asked for; `durable_seq` is core's durable seq now.
  Ticket Open(std::uint64_t durable_seq);
  // The read's records are all decided. Closing a ticket twice, or one of another guard, is
  // harmless.
  void Close(const Ticket& ticket);

  // Core dropped job `id` from memory (its terminal batch committed).
  void OnEvicted(JobId id);
  // A retention purge was appended to batch `batch_seq`.
  void OnPurge(std::uint64_t batch_seq);
  // Core deleted job `id`'s row in batch `batch_seq` (the open batch). Unlike a purge it makes
  // only that job's records stale, so a bulk delete does not send every concurrent read of
  // other jobs round again.
  void OnDeleted(JobId id, std::uint64_t batch_seq);
  // Every batch up to `seq` is durable (deletes in them can no longer be missed by a new read).
  void OnDurable(std::uint64_t seq);

  // True when a record of `id` read under `ticket` may be older than what the store holds now
  // or will hold once the batches already built commit.
  bool MaybeStale(const Ticket& ticket, JobId id) const;
  // A read made once this batch is durable sees every purge issued so far (0: none ever).
  std::uint64_t last_purge_seq() const { return last_purge_seq_; }

  std::size_t open_reads() const { return open_.size(); }
  std::size_t remembered() const { return log_.size(); }
  std::size_t remembered_deletes() const { return deleted_log_.size(); }

 private:
  void Trim();
  void TrimDeleted();

  std::size_t max_remembered_;
  std::uint64_t next_ticket_ = 1;
  // Open tickets: id -> `since`. Ids and positions both grow, so the first entry holds the
  // oldest position any open read needs.
  std::map<std::uint64_t, std::uint64_t> open_;
  std::deque<std::pair<std::uint64_t, JobId>> log_;  // (position, id), positions increasing
  std::unordered_map<JobId, std::uint64_t> latest_;  // id -> position of its newest entry in log_
  std::uint64_t next_pos_ = 1;
  std::uint64_t forgotten_below_ = 0;  // entries below this position were dropped over the cap
  std::uint64_t last_purge_seq_ = 0;
  // Deletes: (batch seq, id) in the order made (seqs nondecreasing), and the newest seq per id.
  // The durable seqs of the open reads (a multiset: several reads may share one), so that the
  // oldest one bounds which deletes must still be remembered.
  std::deque<std::pair<std::uint64_t, JobId>> deleted_log_;
  std::unordered_map<JobId, std::uint64_t> deleted_;
  std::multiset<std::uint64_t> open_durable_;
  std::map<std::uint64_t, std::uint64_t> durable_of_;  // ticket id -> its durable seq
  std::uint64_t durable_seq_ = 0;
};

}  // namespace ym
