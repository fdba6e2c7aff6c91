// Uses the installed SDK end to end: `consumer URL` enqueues a job with yardmaster::Client, runs
// it with yardmaster::Worker, and reads the finished job back; `consumer --version` prints the
// SDK's version. Exits 0 and prints "succeeded <result>" when all of it worked.

#include <yardmaster/client.h>
#include <yardmaster/version.h>
#include <yardmaster/worker.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer URL | --version\n";
    return 2;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << yardmaster::kVersion << '\n';
    return 0;
  }
  yardmaster::ClientOptions client_options;
  client_options.server_url = argv[1];
  yardmaster::Client client(client_options);
  yardmaster::EnqueueOptions job;
  job.queue = "installed";
  job.kind = "double";
  job.payload_json = "21";
  yardmaster::Result<yardmaster::Enqueued> enqueued = client.Enqueue(job);
  if (!enqueued.ok()) {
    std::cerr << "enqueue: " << enqueued.status().ToString() << '\n';
    return 1;
  }

  yardmaster::WorkerOptions worker_options;
  worker_options.server_url = argv[1];
  worker_options.queues = {"installed"};
  yardmaster::Worker worker(worker_options);
  worker.Handle("double", [&worker](yardmaster::JobContext& ctx) {
    worker.Stop();
    return yardmaster::Outcome::Ok(std::to_string(std::stoi(ctx.payload()) * 2));
  });
  yardmaster::Status run = worker.Run();
  if (!run.ok()) {
    std::cerr << "worker: " << run.ToString() << '\n';
    return 1;
  }

  // The ack is confirmed before Run() returns; the server keeps the finished job (the test
  // starts it with a retention window for succeeded jobs).
  yardmaster::Result<yardmaster::JobInfo> info = client.Get(enqueued->id);
  if (!info.ok()) {
    std::cerr << "get: " << info.status().ToString() << '\n';
    return 1;
  }
  std::cout << info->state << ' ' << info->result_json.value_or("-") << '\n';
  return 0;
}
