// The HTTP server writes response heads itself (no Beast response object per request): they must be the bytes
// Beast's serializer wrote for the same reply.
#include "server/http_server.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <sstream>

namespace orchard::server {
namespace {

namespace http = boost::beast::http;

std::string beast_head(const HttpReply& r, bool keep_alive) {
  http::response<http::string_body> res(static_cast<http::status>(r.status), 11);
  res.set(http::field::server, "orchard");
  res.set(http::field::content_type, std::string(r.content_type));
  if (r.json_length) res.set("Inference-Header-Content-Length", std::to_string(*r.json_length));
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  const std::string all = out.str();
  return all.substr(0, all.size() - r.body.size());
}

TEST(ServerHttp, ResponseHeadMatchesBeast) {
  const HttpReply replies[] = {
      json_reply(200, "{\"live\":true}"),
      json_reply(400, "{\"error\":\"[server] bad\"}"),
      json_reply(404, ""),
      json_reply(413, std::string(70000, 'x')),
      json_reply(503, "{}"),
      HttpReply{200, "# metrics\n", "text/plain; version=0.0.4; charset=utf-8", std::nullopt},
      HttpReply{200, std::string("{\"outputs\":[]}\0\1\2\3", 19), "application/octet-stream", size_t{15}},
  };
  for (const HttpReply& r : replies) {
    for (const bool keep_alive : {true, false}) {
      std::string head = "left alone|";
      append_response_head(head, r, keep_alive, r.body.size());
      EXPECT_EQ(head, "left alone|" + beast_head(r, keep_alive)) << r.status << " keep-alive " << keep_alive;
    }
  }
}

}  // namespace
}  // namespace orchard::server
