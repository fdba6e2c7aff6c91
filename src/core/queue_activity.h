// QueueActivity: per-queue counts of how attempts ended and when workers last asked for the
// queue, kept by the scheduler in each QueueState and handed out with the per-queue gauges
// (Scheduler::QueueGaugeValues -> Broker QueueGauge), for the alert evaluator
// (obs/alerts/evaluator.h) to sample.
//
// The counts are cumulative from when core first held the queue: they start at 0 at every
// start of the server, and again when core frees an idle queue (Scheduler::CollectQueues). A
// reader that needs rates takes differences and treats a decrease as such a restart.
// Core thread only (a copy travels with the gauges).
#pragma once

#include <cstdint>

namespace ym {

struct QueueActivity {
  std::uint64_t succeeded = 0;  // acks
  // Failed attempts: fail reports, attempt timeouts and lease expiries (not the fail of a job
  // whose cancel was requested: that ends it cancelled).
  std::uint64_t failed = 0;
  std::uint64_t dead = 0;         // jobs that ended dead
  std::int64_t last_poll_ms = 0;  // wall: a lease request (or a waiting long-poll) last named it
};

}  // namespace ym
