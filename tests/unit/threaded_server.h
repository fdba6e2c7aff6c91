// ThreadedServer: a scripted HTTP/1.1 server on 127.0.0.1 for SDK tests. Each connection is
// served on its own thread, so a handler may block (hold a reply until another request of the
// client was answered) without stalling the client's other connections.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ym::test_support {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Reply {
  int status = 200;
  std::string body = "{}";
};

// Answers every request with handler(method target, body); one thread per connection. The
// handler runs on that connection's thread and may block.
class ThreadedServer {
 public:
  explicit ThreadedServer(std::function<Reply(const std::string&, const std::string&)> handler)
      : handler_(std::move(handler)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { Accept(); });
  }

  ~ThreadedServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(ioc_);
    poke.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (std::thread& t : connection_threads_) t.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void Accept() {
    while (!stop_) {
      auto sock = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stop_) return;
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(sock);
      connection_threads_.emplace_back([this, sock] { Serve(*sock); });
    }
  }

  void Serve(tcp::socket& sock) {
    beast::flat_buffer buf;
    while (!stop_) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(sock, buf, req, ec);
      if (ec) return;
      const Reply r =
          handler_(std::string(req.method_string()) + " " + std::string(req.target()), req.body());
      http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
      res.set(http::field::content_type, "application/json");
      res.body() = r.body;
      res.keep_alive(true);
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec) return;
    }
  }

  std::function<Reply(const std::string&, const std::string&)> handler_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;  // guarded by mu_
  std::vector<std::thread> connection_threads_;        // guarded by mu_
};

}  // namespace ym::test_support
