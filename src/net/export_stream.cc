#include "net/export_stream.h"

#include <utility>

#include "net/codec.h"

namespace ym::net {
namespace {

class NamespaceExport final : public BodyStream,
                              public std::enable_shared_from_this<NamespaceExport> {
 public:
  NamespaceExport(Broker& broker, std::string ns) : broker_(broker), ns_(std::move(ns)) {}

  // The transport calls Next only after the previous piece was handed over and written, so
  // after_ and done_ are never touched by two threads at once.
  void Next(PieceCallback piece) override {
    if (done_) return piece(StreamPiece{{}, true});
    broker_.ExportNamespacePage(
        ns_, after_, kExportJobsPerPage, kExportExaminedPerPage,
        [self = shared_from_this(), piece = std::move(piece)](Result<JobPage> page) {
          if (!page.ok()) return piece(page.status());
          StreamPiece out;
          for (const JobView& v : page->items) {
            out.bytes += RenderJob(v);  // redacted (codec_jobs.cc, WriteJob)
            out.bytes += '\n';
          }
          self->after_ = page->next_after_id;
          self->done_ = page->next_after_id == 0;
          out.last = self->done_;
          piece(std::move(out));
        });
  }

 private:
  Broker& broker_;
  const std::string ns_;
  JobId after_ = 0;
  bool done_ = false;
};

}  // namespace

std::shared_ptr<BodyStream> MakeNamespaceExport(Broker& broker, std::string ns) {
  return std::make_shared<NamespaceExport>(broker, std::move(ns));
}

}  // namespace ym::net
