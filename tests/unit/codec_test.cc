// Unit tests of net/codec.h: every validation rule of docs/api.md, and round trips.
#include "net/codec.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "net/cursor.h"

namespace ym::net {
namespace {

struct BadCase {
  std::string body;
  Code code;
  std::string message;  // must appear in the error message
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.body; }

CodecLimits Limits(std::size_t max_payload = 1 << 20) {
  CodecLimits l;
  l.max_payload_bytes = max_payload;
  return l;
}

// Parses `json` and fails the test if it is not valid JSON; returns the document.
rapidjson::Document Doc(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  return d;
}

// ---- enqueue ----

TEST(CodecEnqueue, MinimalSpecGetsDefaults) {
  auto spec = ParseEnqueue(R"({"queue":"emails","kind":"send"})", Limits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->queue, "emails");
  EXPECT_EQ(spec->kind, "send");
  EXPECT_EQ(spec->ns, "default");
  EXPECT_EQ(spec->payload, "null");
  EXPECT_EQ(spec->priority, 0);
  EXPECT_FALSE(spec->delay_ms);
  EXPECT_FALSE(spec->run_at_ms);
  EXPECT_FALSE(spec->max_attempts);
  EXPECT_FALSE(spec->backoff);
  EXPECT_FALSE(spec->lease_ms);
  EXPECT_TRUE(spec->idempotency_key.empty());
  EXPECT_FALSE(spec->idempotency_ttl_ms);
  EXPECT_TRUE(spec->concurrency_key.empty());
  EXPECT_TRUE(spec->tags.empty());
}

TEST(CodecEnqueue, EveryFieldParses) {
  auto spec = ParseEnqueue(R"({
    "queue":"q.1:a-b_c", "kind":"k", "namespace":"tenant7",
    "payload": {"b": [1, 2.5, "x\u00e9"], "a": null, "t": true},
    "priority": -1000000, "delay_ms": 5000, "max_attempts": 1000,
    "backoff": {"initial_ms": 10, "max_ms": 2592000000, "multiplier": 1.5},
    "lease_ms": 86400000, "idempotency_key": "order-42", "idempotency_ttl_ms": 60000,
    "concurrency_key": "user:7", "tags": ["a", "b c"]})",
                           Limits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->ns, "tenant7");
  EXPECT_EQ(spec->queue, "q.1:a-b_c");
  // The payload's own text minus whitespace: member order and escapes kept as sent.
  EXPECT_EQ(spec->payload, R"({"b":[1,2.5,"x\u00e9"],"a":null,"t":true})");
  EXPECT_EQ(spec->priority, -1000000);
  EXPECT_EQ(spec->delay_ms, 5000);
  EXPECT_EQ(spec->max_attempts, 1000);
  ASSERT_TRUE(spec->backoff);
  EXPECT_EQ(spec->backoff->initial_ms, 10);
  EXPECT_EQ(spec->backoff->max_ms, 2592000000);
  EXPECT_DOUBLE_EQ(spec->backoff->multiplier, 1.5);
  EXPECT_EQ(spec->lease_ms, 86400000);
  EXPECT_EQ(spec->idempotency_key, "order-42");
  EXPECT_EQ(spec->idempotency_ttl_ms, 60000);
  EXPECT_EQ(spec->concurrency_key, "user:7");
  EXPECT_EQ(spec->tags, (std::vector<std::string>{"a", "b c"}));
}

// Regression (issue 7 item 1): payloads were re-serialized through doubles, so big or exact
// numbers changed and numbers beyond the double range were refused.
TEST(CodecEnqueue, PayloadsArePassedThroughExactly) {
  const std::string payload =
      R"({"big":12345678901234567890123,"neg":-9223372036854775809,"e":1E2,)"
      R"("fuzz":799999999999999999999999999999999999999990,"huge":1e400,"tiny":-0.0e-400,)"
      R"("pi":3.14159265358979323846264338327950288,"s":"\u00e9\ud83d\ude00\/\"\\\n",)"
      R"("raw":"é😀","nested":[[],{},[{"a":[null,true,false]}]]})";
  auto spec = ParseEnqueue(R"({"queue":"q","kind":"k","payload":)" + payload + "}", Limits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->payload, payload);

  // Insignificant whitespace goes; whitespace inside strings stays.
  auto spaced = ParseEnqueue(
      "{\"queue\":\"q\",\"kind\":\"k\",\"payload\": {\n\t\"a\" : [ 1 ,\r\n"
      " 2E+3 ] , \"b c\" : \" x \" } }",
      Limits());
  ASSERT_TRUE(spaced.ok()) << spaced.status().ToString();
  EXPECT_EQ(spaced->payload, R"({"a":[1,2E+3],"b c":" x "})");

  // Ack results follow the same rule.
  auto ack =
      ParseAck(7, R"({"token":"00000000000000ff","result": {"n": 1.50, "m": 1e-7}})", Limits());
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(ack->result, R"({"n":1.50,"m":1e-7})");

  // The size limit applies to the kept text.
  std::string exact = "[" + std::string(10, '1') + "]";  // 12 bytes
  EXPECT_TRUE(
      ParseEnqueue(R"({"queue":"q","kind":"k","payload": )" + exact + "}", Limits(12)).ok());
  EXPECT_EQ(ParseEnqueue(R"({"queue":"q","kind":"k","payload":)" + exact + "}", Limits(11))
                .status()
                .code(),
            Code::kPayloadTooLarge);
}

// Numbers that used to be refused in a payload are now kept; in an integer field they are still
// out of range, with the field named.
TEST(CodecEnqueue, HugeNumbersInIntegerFieldsAre422) {
  auto s = ParseEnqueue(R"({"queue":"q","kind":"k","priority":1e400})", Limits());
  EXPECT_EQ(s.status().code(), Code::kValidation);
  EXPECT_NE(s.status().message().find("\"priority\""), std::string::npos);
  EXPECT_EQ(ParseEnqueue(R"({"queue":"q","kind":"k","delay_ms":99999999999999999999999})", Limits())
                .status()
                .code(),
            Code::kValidation);
  EXPECT_EQ(ParseEnqueue(R"({"queue":"q","kind":"k","backoff":{"multiplier":1e400}})", Limits())
                .status()
                .code(),
            Code::kValidation);
}

// Regression (issue 7 item 2): a lone low surrogate was accepted and sent back as invalid UTF-8.
TEST(CodecStrings, LoneSurrogatesAreInvalidJsonAnywhere) {
  const std::vector<std::string> bodies = {
      R"({"queue":"q","kind":"k","payload":"\udc00"})",
      R"({"queue":"q","kind":"k","payload":{"\udc00":1}})",
      R"({"queue":"q","kind":"k","payload":"\ud800"})",
      R"({"queue":"q","kind":"k","payload":"\ud800x"})",
      R"({"queue":"q","kind":"k","payload":"\ud800\u0041"})",
      R"({"queue":"q","kind":"k","payload":"\udc00\ud800"})",
      R"({"queue":"q","kind":"k","tags":["\udc00"]})",
      R"({"queue":"q","kind":"k","idempotency_key":"a\uDFFFb"})",
      R"({"queue":"q","kind":"k\udc00"})",
  };
  for (const auto& body : bodies) {
    auto r = ParseEnqueue(body, Limits());
    EXPECT_EQ(r.status().code(), Code::kInvalidJson) << body;
    EXPECT_NE(r.status().message().find("surrogate"), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(
      ParseFail(1, R"({"token":"00000000000000ff","error":{"message":"\udc00"}})").status().code(),
      Code::kInvalidJson);
  EXPECT_EQ(ParseLease(R"({"queues":["q"],"worker_id":"\udc00"})").status().code(),
            Code::kInvalidJson);
  // Invalid UTF-8 bytes (here an encoded surrogate and an overlong '/') are refused as well.
  EXPECT_EQ(ParseEnqueue("{\"queue\":\"q\",\"kind\":\"k\",\"payload\":\"\xed\xb0\x80\"}", Limits())
                .status()
                .code(),
            Code::kInvalidJson);
  EXPECT_EQ(ParseEnqueue("{\"queue\":\"q\",\"kind\":\"k\",\"payload\":\"\xc0\xaf\"}", Limits())
                .status()
                .code(),
            Code::kInvalidJson);
  // A proper pair is kept as sent.
  auto ok = ParseEnqueue(R"({"queue":"q","kind":"k","payload":"\ud83d\ude00"})", Limits());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->payload, R"("\ud83d\ude00")");
}

// Regression (issue 7 item 3): bytes after a NUL that followed the body were ignored.
TEST(CodecStrings, BytesAfterTheBodyAreInvalidJson) {
  const std::string body = R"({"queue":"q","kind":"k"})";
  for (const std::string& tail : {std::string("\0", 1), std::string("\0{\"x\":1}", 8),
                                  std::string(" x"), std::string("{}"), std::string(",")}) {
    auto r = ParseEnqueue(body + tail, Limits());
    EXPECT_EQ(r.status().code(), Code::kInvalidJson) << tail.size();
  }
  EXPECT_TRUE(ParseEnqueue(body + " \r\n\t", Limits()).ok());
  EXPECT_EQ(ParseEmptyObject(std::string("{}\0", 3)).code(), Code::kInvalidJson);
}

TEST(CodecEnqueue, RunAtAndScalarPayloads) {
  auto spec =
      ParseEnqueue(R"({"queue":"q","kind":"k","run_at":1700000000000,"payload":"hi"})", Limits());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->run_at_ms, 1700000000000);
  EXPECT_EQ(spec->payload, "\"hi\"");
  spec = ParseEnqueue(R"({"queue":"q","kind":"k","payload":-12})", Limits());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->payload, "-12");
  spec = ParseEnqueue(R"({"queue":"q","kind":"k","payload":null})", Limits());
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->payload, "null");
}

TEST(CodecEnqueue, NullMeansAbsentForOptionalFields) {
  auto spec = ParseEnqueue(
      R"({"queue":"q","kind":"k","namespace":null,"priority":null,"idempotency_key":null,
          "backoff":null,"tags":null})",
      Limits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->ns, "default");
  EXPECT_FALSE(spec->backoff);
}

TEST(CodecEnqueue, PayloadEscapesSurviveRoundTrip) {
  auto spec = ParseEnqueue(
      R"({"queue":"q","kind":"k","payload":{"s":"quote\" slash\\ nl\n tab\t nul\u0000 <\/>"}})",
      Limits());
  ASSERT_TRUE(spec.ok());
  auto back = Doc(spec->payload);
  std::string s(back["s"].GetString(), back["s"].GetStringLength());
  constexpr char kWant[] = "quote\" slash\\ nl\n tab\t nul\0 </>";
  EXPECT_EQ(s, std::string(kWant, sizeof(kWant) - 1));
}

TEST(CodecEnqueue, PayloadLimitIsOnTheCompactSerialization) {
  // 10 bytes of compact JSON: {"a":"12"} -- whitespace in the request does not count.
  auto ok = ParseEnqueue(R"({"queue":"q","kind":"k","payload":  { "a" :  "123" } })", Limits(11));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto big = ParseEnqueue(R"({"queue":"q","kind":"k","payload":{"a":"1234"}})", Limits(11));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Code::kPayloadTooLarge);
  EXPECT_NE(big.status().message().find("field \"payload\""), std::string::npos);
  std::string mib(1 << 20, 'x');
  auto over = ParseEnqueue(R"({"queue":"q","kind":"k","payload":")" + mib + "\"}", Limits());
  EXPECT_EQ(over.status().code(), Code::kPayloadTooLarge);
}

class CodecEnqueueBad : public testing::TestWithParam<BadCase> {};

TEST_P(CodecEnqueueBad, IsRejected) {
  const BadCase& c = GetParam();
  auto spec = ParseEnqueue(c.body, Limits());
  ASSERT_FALSE(spec.ok()) << c.body;
  EXPECT_EQ(spec.status().code(), c.code) << spec.status().ToString();
  EXPECT_NE(spec.status().message().find(c.message), std::string::npos)
      << "message: " << spec.status().message() << "\nwanted: " << c.message;
}

const std::string kQK = R"("queue":"q","kind":"k")";

INSTANTIATE_TEST_SUITE_P(
    Rules, CodecEnqueueBad,
    testing::Values(
        // Malformed JSON and encoding.
        BadCase{"", Code::kInvalidJson, "empty"},
        BadCase{"{", Code::kInvalidJson, "malformed JSON"},
        BadCase{R"({"queue":"q",})", Code::kInvalidJson, "malformed JSON"},
        BadCase{R"({"queue":"q"} x)", Code::kInvalidJson, "malformed JSON"},
        BadCase{"{\"queue\":\"\xff\"}", Code::kInvalidJson, "malformed JSON"},
        BadCase{"{\"queue\":\"a\x01\"}", Code::kInvalidJson, "malformed JSON"},
        BadCase{R"({"queue":NaN})", Code::kInvalidJson, "malformed JSON"},
        // Body shape.
        BadCase{"[]", Code::kValidation, "must be a JSON object"},
        BadCase{"42", Code::kValidation, "must be a JSON object"},
        BadCase{"{" + kQK + R"(,"payload":)" + std::string(200, '[') + std::string(200, ']') + "}",
                Code::kValidation, "nested deeper than 128"},
        // Required fields.
        BadCase{R"({"kind":"k"})", Code::kValidation, "field \"queue\": is required"},
        BadCase{R"({"queue":"q"})", Code::kValidation, "field \"kind\": is required"},
        BadCase{R"({"queue":null,"kind":"k"})", Code::kValidation, "field \"queue\": is required"},
        // Names.
        BadCase{R"({"queue":"","kind":"k"})", Code::kValidation,
                "field \"queue\": must be a string of 1 to 128 characters from [A-Za-z0-9_.:-]"},
        BadCase{R"({"queue":"a b","kind":"k"})", Code::kValidation, "field \"queue\""},
        BadCase{R"({"queue":7,"kind":"k"})", Code::kValidation,
                "field \"queue\": must be a string"},
        BadCase{"{\"queue\":\"" + std::string(129, 'a') + "\",\"kind\":\"k\"}", Code::kValidation,
                "field \"queue\""},
        BadCase{R"({"queue":"q","kind":"k/x"})", Code::kValidation, "field \"kind\""},
        BadCase{"{" + kQK + R"(,"namespace":"a/b"})", Code::kValidation, "field \"namespace\""},
        BadCase{"{" + kQK + R"(,"concurrency_key":"a b"})", Code::kValidation,
                "field \"concurrency_key\""},
        // Priority.
        BadCase{"{" + kQK + R"(,"priority":1000001})", Code::kValidation,
                "field \"priority\": must be an integer between -1000000 and 1000000"},
        BadCase{"{" + kQK + R"(,"priority":-1000001})", Code::kValidation,
                "field \"priority\": must be an integer between -1000000 and 1000000"},
        BadCase{"{" + kQK + R"(,"priority":1.5})", Code::kValidation,
                "field \"priority\": must be an integer"},
        BadCase{"{" + kQK + R"(,"priority":"1"})", Code::kValidation,
                "field \"priority\": must be an integer"},
        BadCase{"{" + kQK + R"(,"priority":1e2})", Code::kValidation,
                "field \"priority\": must be an integer"},
        // Delay and run_at.
        BadCase{"{" + kQK + R"(,"delay_ms":-1})", Code::kValidation,
                "field \"delay_ms\": must be an integer between 0 and"},
        BadCase{"{" + kQK + R"(,"delay_ms":99999999999999999999})", Code::kValidation,
                "field \"delay_ms\""},
        BadCase{"{" + kQK + R"(,"run_at":-5})", Code::kValidation,
                "field \"run_at\": must be an integer between 0 and"},
        BadCase{"{" + kQK + R"(,"run_at":1,"delay_ms":1})", Code::kValidation,
                "field \"run_at\": cannot be combined with \"delay_ms\""},
        // Attempts and lease.
        BadCase{"{" + kQK + R"(,"max_attempts":0})", Code::kValidation,
                "field \"max_attempts\": must be an integer between 1 and 1000"},
        BadCase{"{" + kQK + R"(,"max_attempts":1001})", Code::kValidation,
                "field \"max_attempts\": must be an integer between 1 and 1000"},
        BadCase{"{" + kQK + R"(,"lease_ms":99})", Code::kValidation,
                "field \"lease_ms\": must be an integer between 100 and 86400000"},
        BadCase{"{" + kQK + R"(,"lease_ms":86400001})", Code::kValidation,
                "field \"lease_ms\": must be an integer between 100 and 86400000"},
        // Backoff.
        BadCase{"{" + kQK + R"(,"backoff":5})", Code::kValidation,
                "field \"backoff\": must be an object"},
        BadCase{"{" + kQK + R"(,"backoff":{"initial_ms":0}})", Code::kValidation,
                "field \"backoff.initial_ms\": must be an integer between 1 and 2592000000"},
        BadCase{"{" + kQK + R"(,"backoff":{"max_ms":2592000001}})", Code::kValidation,
                "field \"backoff.max_ms\": must be an integer between 1 and 2592000000"},
        BadCase{"{" + kQK + R"(,"backoff":{"initial_ms":5000,"max_ms":4000}})", Code::kValidation,
                "field \"backoff.initial_ms\": must not exceed max_ms (4000)"},
        BadCase{"{" + kQK + R"(,"backoff":{"multiplier":0.5}})", Code::kValidation,
                "field \"backoff.multiplier\": must be a number between 1 and 100"},
        BadCase{"{" + kQK + R"(,"backoff":{"multiplier":101}})", Code::kValidation,
                "field \"backoff.multiplier\""},
        BadCase{"{" + kQK + R"(,"backoff":{"multiplier":"2"}})", Code::kValidation,
                "field \"backoff.multiplier\""},
        BadCase{"{" + kQK + R"(,"backoff":{"jitter":true}})", Code::kValidation,
                "field \"backoff.jitter\": unknown field"},
        // Idempotency.
        BadCase{"{" + kQK + R"(,"idempotency_key":""})", Code::kValidation,
                "field \"idempotency_key\": must be a string of 1 to 256 bytes"},
        BadCase{"{" + kQK + ",\"idempotency_key\":\"" + std::string(257, 'k') + "\"}",
                Code::kValidation, "field \"idempotency_key\""},
        BadCase{"{" + kQK + R"(,"idempotency_key":5})", Code::kValidation,
                "field \"idempotency_key\""},
        BadCase{"{" + kQK + R"(,"idempotency_ttl_ms":1000})", Code::kValidation,
                "field \"idempotency_ttl_ms\": requires \"idempotency_key\""},
        BadCase{"{" + kQK + R"(,"idempotency_key":"a","idempotency_ttl_ms":0})", Code::kValidation,
                "field \"idempotency_ttl_ms\": must be an integer between 1 and"},
        // Tags.
        BadCase{"{" + kQK + R"(,"tags":"a"})", Code::kValidation,
                "field \"tags\": must be an array of at most 32 strings"},
        BadCase{"{" + kQK + R"(,"tags":[""]})", Code::kValidation,
                "field \"tags[0]\": must be a string of 1 to 128 bytes"},
        BadCase{"{" + kQK + R"(,"tags":["a",3]})", Code::kValidation, "field \"tags[1]\""},
        BadCase{"{" + kQK + ",\"tags\":[\"" + std::string(129, 't') + "\"]}", Code::kValidation,
                "field \"tags[0]\""},
        BadCase{
            "{" + kQK +
                R"(,"tags":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21","22","23","24","25","26","27","28","29","30","31","32","33"]})",
            Code::kValidation, "field \"tags\""},
        // Unknown and repeated fields.
        BadCase{"{" + kQK + R"(,"prio":1})", Code::kValidation, "field \"prio\": unknown field"},
        BadCase{R"({"queue":"q","queue":"r","kind":"k"})", Code::kValidation,
                "field \"queue\": duplicate field"}));

// ---- batch ----

TEST(CodecBatch, GoodAndBadItemsAreIndependent) {
  auto items = ParseEnqueueBatch(
      R"({"jobs":[{"queue":"a","kind":"k"}, {"queue":"b"}, 7, {"queue":"c","kind":"k","priority":2}]})",
      Limits());
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 4u);
  ASSERT_TRUE((*items)[0].ok());
  EXPECT_EQ((*items)[0]->queue, "a");
  EXPECT_EQ((*items)[1].status().code(), Code::kValidation);
  EXPECT_NE((*items)[1].status().message().find("field \"kind\": is required"), std::string::npos);
  EXPECT_EQ((*items)[2].status().code(), Code::kValidation);
  ASSERT_TRUE((*items)[3].ok());
  EXPECT_EQ((*items)[3]->priority, 2);
}

TEST(CodecBatch, OversizedItemFailsAlone) {
  auto items = ParseEnqueueBatch(
      R"({"jobs":[{"queue":"a","kind":"k","payload":"0123456789"},{"queue":"a","kind":"k"}]})",
      Limits(8));
  ASSERT_TRUE(items.ok());
  EXPECT_EQ((*items)[0].status().code(), Code::kPayloadTooLarge);
  EXPECT_TRUE((*items)[1].ok());
}

TEST(CodecBatch, EnvelopeRules) {
  EXPECT_EQ(ParseEnqueueBatch("nope", Limits()).status().code(), Code::kInvalidJson);
  auto missing = ParseEnqueueBatch("{}", Limits());
  EXPECT_EQ(missing.status().message(), "field \"jobs\": is required");
  auto empty = ParseEnqueueBatch(R"({"jobs":[]})", Limits());
  EXPECT_EQ(empty.status().code(), Code::kValidation);
  EXPECT_EQ(empty.status().message(), "field \"jobs\": must be an array of 1 to 1000 job specs");
  EXPECT_EQ(ParseEnqueueBatch(R"({"jobs":{}})", Limits()).status().code(), Code::kValidation);
  auto unknown = ParseEnqueueBatch(R"({"jobs":[{"queue":"a","kind":"k"}],"x":1})", Limits());
  EXPECT_EQ(unknown.status().message(), "field \"x\": unknown field");
  std::string many = R"({"jobs":[)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + R"({"queue":"a","kind":"k"})";
  many += "]}";
  EXPECT_EQ(ParseEnqueueBatch(many, Limits()).status().code(), Code::kValidation);
  many.replace(many.find(R"({"queue":"a","kind":"k"},)"), 25, "");
  auto thousand = ParseEnqueueBatch(many, Limits());
  ASSERT_TRUE(thousand.ok());
  EXPECT_EQ(thousand->size(), 1000u);
}

// ---- lease ----

TEST(CodecLease, DefaultsAndFields) {
  auto req = ParseLease(R"({"queues":["a"]})");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->queues, std::vector<std::string>{"a"});
  EXPECT_EQ(req->max, 1u);
  EXPECT_EQ(req->wait_ms, 0);
  EXPECT_EQ(req->worker_id, "");
  EXPECT_FALSE(req->lease_ms);
  req = ParseLease(
      R"({"queues":["a","b"],"max":1000,"wait_ms":30000,"worker_id":"w-1","lease_ms":100})");
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->max, 1000u);
  EXPECT_EQ(req->wait_ms, 30000);
  EXPECT_EQ(req->worker_id, "w-1");
  EXPECT_EQ(req->lease_ms, 100);
}

class CodecLeaseBad : public testing::TestWithParam<BadCase> {};

TEST_P(CodecLeaseBad, IsRejected) {
  const BadCase& c = GetParam();
  auto req = ParseLease(c.body);
  ASSERT_FALSE(req.ok()) << c.body;
  EXPECT_EQ(req.status().code(), c.code) << req.status().ToString();
  EXPECT_NE(req.status().message().find(c.message), std::string::npos) << req.status().message();
}

std::string SixtyFiveQueues() {
  std::string s = R"({"queues":[)";
  for (int i = 0; i < 65; ++i) s += std::string(i ? "," : "") + "\"q" + std::to_string(i) + "\"";
  return s + "]}";
}

INSTANTIATE_TEST_SUITE_P(
    Rules, CodecLeaseBad,
    testing::Values(
        BadCase{"{]", Code::kInvalidJson, "malformed JSON"},
        BadCase{"{}", Code::kValidation, "field \"queues\": is required"},
        BadCase{R"({"queues":[]})", Code::kValidation,
                "field \"queues\": must be an array of 1 to 64 queue names"},
        BadCase{R"({"queues":"a"})", Code::kValidation, "field \"queues\": must be an array"},
        BadCase{SixtyFiveQueues(), Code::kValidation,
                "field \"queues\": must be an array of 1 to 64"},
        BadCase{R"({"queues":["ok","b d"]})", Code::kValidation,
                "field \"queues[1]\": must be a string of 1 to 128 characters"},
        BadCase{R"({"queues":["a"],"max":0})", Code::kValidation,
                "field \"max\": must be an integer between 1 and 1000"},
        BadCase{R"({"queues":["a"],"max":1001})", Code::kValidation,
                "field \"max\": must be an integer between 1 and 1000"},
        BadCase{R"({"queues":["a"],"wait_ms":-1})", Code::kValidation,
                "field \"wait_ms\": must be an integer between 0 and 30000"},
        BadCase{R"({"queues":["a"],"wait_ms":30001})", Code::kValidation,
                "field \"wait_ms\": must be an integer between 0 and 30000"},
        BadCase{R"({"queues":["a"],"lease_ms":99})", Code::kValidation,
                "field \"lease_ms\": must be an integer between 100 and 86400000"},
        BadCase{R"({"queues":["a"],"lease_ms":86400001})", Code::kValidation, "field \"lease_ms\""},
        BadCase{"{\"queues\":[\"a\"],\"worker_id\":\"" + std::string(129, 'w') + "\"}",
                Code::kValidation, "field \"worker_id\": must be a string of 0 to 128 bytes"},
        BadCase{R"({"queues":["a"],"worker_id":1})", Code::kValidation, "field \"worker_id\""},
        BadCase{R"({"queues":["a"],"wait":1})", Code::kValidation,
                "field \"wait\": unknown field"}));

// ---- cancel watch ----

TEST(CodecCancelWatch, Rules) {
  auto w = ParseCancelWatch(R"({"worker_id":"w1"})");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->worker_id, "w1");
  EXPECT_TRUE(w->known.empty());
  EXPECT_EQ(w->wait_ms, 0);
  w = ParseCancelWatch(R"({"worker_id":"w1","known":["7","42"],"wait_ms":30000})");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->known, (std::vector<JobId>{7, 42}));
  EXPECT_EQ(w->wait_ms, 30000);
  EXPECT_EQ(ParseCancelWatch("{}").status().message(), "field \"worker_id\": is required");
  EXPECT_EQ(ParseCancelWatch(R"({"worker_id":""})").status().message(),
            "field \"worker_id\": must be a string of 1 to 128 bytes");
  EXPECT_EQ(ParseCancelWatch(R"({"worker_id":"w","known":[7]})").status().message(),
            "field \"known[0]\": must be a job id (a decimal string such as \"42\")");
  EXPECT_EQ(ParseCancelWatch(R"({"worker_id":"w","known":{}})").status().message(),
            "field \"known\": must be an array of at most 1000 job ids");
  EXPECT_EQ(ParseCancelWatch(R"({"worker_id":"w","wait_ms":30001})").status().message(),
            "field \"wait_ms\": must be an integer between 0 and 30000");
  EXPECT_EQ(ParseCancelWatch(R"({"worker_id":"w","jobs":[]})").status().message(),
            "field \"jobs\": unknown field");
  EXPECT_EQ(ParseCancelWatch("").status().code(), Code::kInvalidJson);
  EXPECT_EQ(RenderCancelWatch({}), R"({"cancel_requested":[]})");
  EXPECT_EQ(RenderCancelWatch({3, 12}), R"({"cancel_requested":["3","12"]})");
}

// ---- heartbeat, ack, fail ----

TEST(CodecHeartbeat, Rules) {
  auto hb = ParseHeartbeat(R"({"token":"00000000000000ff"})");
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->token, 255u);
  EXPECT_EQ(hb->extend_ms, 0);
  hb = ParseHeartbeat(R"({"token":"00000000000000ff","extend_ms":60000})");
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->extend_ms, 60000);
  EXPECT_EQ(ParseHeartbeat("{}").status().message(), "field \"token\": is required");
  EXPECT_EQ(ParseHeartbeat(R"({"token":"xyz"})").status().message(),
            "field \"token\": must be a lease token of 16 hex digits");
  EXPECT_EQ(ParseHeartbeat(R"({"token":255})").status().code(), Code::kValidation);
  EXPECT_EQ(ParseHeartbeat(R"({"token":"00000000000000ff","extend_ms":50})").status().message(),
            "field \"extend_ms\": must be an integer between 100 and 86400000");
  EXPECT_EQ(ParseHeartbeat(R"({"token":"00000000000000ff","x":1})").status().message(),
            "field \"x\": unknown field");
  EXPECT_EQ(ParseHeartbeat("").status().code(), Code::kInvalidJson);
}

TEST(CodecHeartbeat, ProgressIsANumberOrAnObjectKeptAsSent) {
  const std::string t = R"({"token":"00000000000000ff",)";
  auto hb = ParseHeartbeat(t + R"("progress":42.5})");
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(hb->progress, R"({"percent":42.5})");
  hb = ParseHeartbeat(t + R"("progress":{"percent":100,"step":"upload","done":[1, 2]}})");
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(hb->progress, R"({"percent":100,"step":"upload","done":[1,2]})");
  hb = ParseHeartbeat(t + R"("progress":{"step":"no percent is fine"}})");
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(ParseHeartbeat(t.substr(0, t.size() - 1) + "}")->progress.has_value());
  // null is "not given", as for every optional field: the progress stays as it was.
  EXPECT_FALSE(ParseHeartbeat(t + R"("progress":null})")->progress.has_value());
  struct Bad {
    std::string progress;
    Code code;
    std::string message;
  };
  for (const Bad& b : std::vector<Bad>{
           {"101", Code::kValidation, R"(field "progress": a number must be between 0 and 100)"},
           {"-1", Code::kValidation, R"(field "progress": a number must be between 0 and 100)"},
           {R"("50%")", Code::kValidation,
            R"(field "progress": must be a number 0..100 or an object)"},
           {"[50]", Code::kValidation, R"(field "progress": must be a number 0..100 or an object)"},
           {R"({"percent":"half"})", Code::kValidation,
            R"(field "progress.percent": must be a number between 0 and 100)"},
           {R"({"percent":1e3})", Code::kValidation,
            R"(field "progress.percent": must be a number between 0 and 100)"},
           {R"({"s":")" + std::string(5000, 'x') + R"("})", Code::kPayloadTooLarge,
            R"(field "progress": 5008 bytes without whitespace, the limit is 4096 bytes)"},
       }) {
    auto r = ParseHeartbeat(t + R"("progress":)" + b.progress + "}");
    ASSERT_FALSE(r.ok()) << b.progress;
    EXPECT_EQ(r.status().code(), b.code) << b.progress;
    EXPECT_EQ(r.status().message(), b.message) << b.progress;
  }
}

TEST(CodecAck, Rules) {
  auto ack = ParseAck(42, R"({"token":"0123456789abcdef","result":{"ok": [1, 2]}})", Limits());
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->id, 42u);
  EXPECT_EQ(ack->token, 0x0123456789abcdefULL);
  EXPECT_EQ(ack->result, R"({"ok":[1,2]})");
  ack = ParseAck(42, R"({"token":"0123456789abcdef"})", Limits());
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->result, "");
  EXPECT_EQ(ParseAck(1, R"({"result":1})", Limits()).status().message(),
            "field \"token\": is required");
  EXPECT_EQ(ParseAck(1, R"({"token":"0123456789abcdef","result":"0123456789"})", Limits(8))
                .status()
                .code(),
            Code::kPayloadTooLarge);
  EXPECT_EQ(ParseAck(1, R"({"token":"0123456789abcdef","id":"1"})", Limits()).status().message(),
            "field \"id\": unknown field");
}

TEST(CodecFail, Rules) {
  auto f = ParseFail(
      7,
      R"({"token":"0123456789abcdef","error":{"type":"timeout","message":"slow","retryable":false},"retry_in_ms":500})");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->id, 7u);
  EXPECT_EQ(f->error.type, "timeout");
  EXPECT_EQ(f->error.message, "slow");
  EXPECT_FALSE(f->error.retryable);
  EXPECT_EQ(f->error.retry_in_ms, 500);
  f = ParseFail(7, R"({"token":"0123456789abcdef","error":{"message":""}})");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->error.type, "error");
  EXPECT_TRUE(f->error.retryable);
  EXPECT_FALSE(f->error.retry_in_ms);

  auto msg = [](const std::string& body) { return ParseFail(1, body).status().message(); };
  const std::string t = R"("token":"0123456789abcdef")";
  EXPECT_EQ(msg("{" + t + "}"), "field \"error\": is required");
  EXPECT_EQ(msg("{" + t + R"(,"error":"boom"})"), "field \"error\": must be an object");
  EXPECT_EQ(msg("{" + t + R"(,"error":{}})"), "field \"error.message\": is required");
  EXPECT_EQ(msg("{" + t + R"(,"error":{"message":"m","type":""}})"),
            "field \"error.type\": must be a string of 1 to 128 bytes");
  EXPECT_EQ(msg("{" + t + R"(,"error":{"message":"m","retryable":1}})"),
            "field \"error.retryable\": must be a boolean");
  EXPECT_EQ(msg("{" + t + R"(,"error":{"message":"m","stack":""}})"),
            "field \"error.stack\": unknown field");
  EXPECT_EQ(msg("{" + t + ",\"error\":{\"message\":\"" + std::string(8193, 'm') + "\"}}"),
            "field \"error.message\": must be a string of 0 to 8192 bytes");
  EXPECT_EQ(msg("{" + t + R"(,"error":{"message":"m"},"retry_in_ms":-1})"),
            "field \"retry_in_ms\": must be an integer between 0 and 2592000000");
}

TEST(CodecCompleteBatch, ItemsAreIndependent) {
  auto b = ParseCompleteBatch(
      R"({"acks":[{"id":"1","token":"0123456789abcdef"},{"id":"x","token":"0123456789abcdef"},5],
          "fails":[{"id":"2","token":"0123456789abcdef","error":{"message":"m"}},{"id":"3"}]})",
      Limits());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->acks.size(), 3u);
  ASSERT_EQ(b->fails.size(), 2u);
  EXPECT_TRUE(b->acks[0].ok());
  EXPECT_EQ(b->acks[0]->id, 1u);
  EXPECT_EQ(b->acks[1].status().message(),
            "field \"acks[1].id\": must be a job id (a decimal string such as \"42\")");
  EXPECT_EQ(b->acks[2].status().message(), "field \"acks[2]\": must be an object");
  EXPECT_TRUE(b->fails[0].ok());
  EXPECT_EQ(b->fails[0]->id, 2u);
  EXPECT_EQ(b->fails[1].status().message(), "field \"fails[1].token\": is required");
}

TEST(CodecCompleteBatch, EnvelopeRules) {
  EXPECT_EQ(ParseCompleteBatch("{}", Limits()).status().message(),
            "field \"fails\": acks and fails together must hold 1 to 1000 items");
  EXPECT_EQ(ParseCompleteBatch(R"({"acks":[],"fails":[]})", Limits()).status().code(),
            Code::kValidation);
  EXPECT_EQ(ParseCompleteBatch(R"({"acks":{}})", Limits()).status().message(),
            "field \"acks\": must be an array");
  EXPECT_EQ(ParseCompleteBatch(R"({"acks":[],"nacks":[]})", Limits()).status().message(),
            "field \"nacks\": unknown field");
  auto only_fails = ParseCompleteBatch(
      R"({"fails":[{"id":"2","token":"0123456789abcdef","error":{"message":"m"}}]})", Limits());
  ASSERT_TRUE(only_fails.ok());
  EXPECT_TRUE(only_fails->acks.empty());
}

// ---- queue patch, dead replay, empty bodies ----

TEST(CodecQueuePatch, Rules) {
  auto p = ParseQueuePatch("emails", R"({"paused":true,"max_attempts":3,"lease_ms":1000,
      "backoff":{"initial_ms":5,"max_ms":10,"multiplier":3},"retention":{"succeeded_ms":0,"dead_ms":60000}})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "emails");
  EXPECT_EQ(p->paused, true);
  EXPECT_EQ(p->max_attempts, 3);
  EXPECT_EQ(p->lease_ms, 1000);
  EXPECT_EQ(p->backoff, (Backoff{5, 10, 3.0}));
  ASSERT_TRUE(p->retention);
  EXPECT_EQ(p->retention->dead_ms, 60000);
  EXPECT_EQ(p->retention->cancelled_ms, Retention{}.cancelled_ms);
  auto empty = ParseQueuePatch("q", "{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->paused || empty->max_attempts || empty->lease_ms || empty->backoff ||
               empty->retention);
  auto msg = [](const std::string& body) { return ParseQueuePatch("q", body).status().message(); };
  EXPECT_EQ(msg(R"({"paused":"yes"})"), "field \"paused\": must be a boolean");
  EXPECT_EQ(msg(R"({"max_attempts":0})"),
            "field \"max_attempts\": must be an integer between 1 and 1000");
  EXPECT_EQ(msg(R"({"lease_ms":1})"),
            "field \"lease_ms\": must be an integer between 100 and 86400000");
  EXPECT_EQ(msg(R"({"retention":{"dead_ms":-1}})"),
            "field \"retention.dead_ms\": must be an integer between 0 and 315360000000");
  EXPECT_EQ(msg(R"({"retention":{"forever":true}})"), "field \"retention.forever\": unknown field");
  EXPECT_EQ(msg(R"({"retention":1})"), "field \"retention\": must be an object");
  EXPECT_EQ(msg(R"({"name":"other"})"), "field \"name\": unknown field");
  EXPECT_EQ(ParseQueuePatch("q", "").status().code(), Code::kInvalidJson);
}

TEST(CodecDeadReplay, Rules) {
  auto r = ParseDeadReplay("{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->queue, "");
  EXPECT_TRUE(r->ids.empty());
  EXPECT_EQ(r->limit, kDefaultReplayLimit);
  r = ParseDeadReplay(R"({"queue":"emails","limit":5})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->queue, "emails");
  EXPECT_EQ(r->limit, 5u);
  r = ParseDeadReplay(R"({"ids":["4","5"]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids, (std::vector<JobId>{4, 5}));
  auto msg = [](const std::string& body) { return ParseDeadReplay(body).status().message(); };
  EXPECT_EQ(msg(R"({"limit":0})"), "field \"limit\": must be an integer between 1 and 100000");
  EXPECT_EQ(msg(R"({"queue":"a b"})").find("field \"queue\""), 0u);
  EXPECT_EQ(msg(R"({"ids":[]})"), "field \"ids\": must be an array of 1 to 1000 job ids");
  EXPECT_EQ(msg(R"({"ids":["0"]})"),
            "field \"ids[0]\": must be a job id (a decimal string such as \"42\")");
  EXPECT_EQ(msg(R"({"ids":[4]})").find("field \"ids[0]\""), 0u);
  EXPECT_EQ(msg(R"({"ids":["4"],"queue":"a"})"),
            "field \"ids\": cannot be combined with \"queue\" or \"limit\"");
  EXPECT_EQ(msg(R"({"all":true})"), "field \"all\": unknown field");
}

TEST(CodecEmptyObject, Rules) {
  EXPECT_TRUE(ParseEmptyObject("").ok());
  EXPECT_TRUE(ParseEmptyObject("{}").ok());
  EXPECT_TRUE(ParseEmptyObject(" { } ").ok());
  EXPECT_EQ(ParseEmptyObject("{").code(), Code::kInvalidJson);
  EXPECT_EQ(ParseEmptyObject("[]").code(), Code::kValidation);
  EXPECT_EQ(ParseEmptyObject(R"({"force":true})").message(), "field \"force\": unknown field");
}

// ---- query strings ----

TEST(CodecQuery, DecodesAndRejects) {
  auto q = ParseQueryString("a=1&b=x%20y+z&c&&d=%3A%2f");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1], (std::pair<std::string, std::string>{"b", "x y z"}));
  EXPECT_EQ((*q)[2], (std::pair<std::string, std::string>{"c", ""}));
  EXPECT_EQ((*q)[3], (std::pair<std::string, std::string>{"d", ":/"}));
  EXPECT_EQ(ParseQueryString("a=%zz").status().code(), Code::kInvalidRequest);
  EXPECT_EQ(ParseQueryString("a=%4").status().code(), Code::kInvalidRequest);
  EXPECT_EQ(ParseQueryString("a=1&a=2").status().message(),
            "query parameter \"a\": given more than once");
  EXPECT_TRUE(ParseQueryString("").ok());
  // Decoded bytes must be UTF-8 (an encoded lone surrogate, a stray continuation byte).
  EXPECT_EQ(ParseQueryString("queue=%ED%B0%80").status().code(), Code::kInvalidRequest);
  EXPECT_EQ(ParseQueryString("%80=1").status().code(), Code::kInvalidRequest);
  EXPECT_TRUE(ParseQueryString("q=%C3%A9").ok());
}

TEST(CodecQuery, ListJobs) {
  auto q = ParseListJobsQuery("");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 100u);
  EXPECT_TRUE(q->filter.empty());
  EXPECT_EQ(q->after_id, 0u);
  ListQuery scope;
  scope.filter.queue = "emails";
  scope.filter.states = {JobState::kDead};
  q = ParseListJobsQuery("queue=emails&state=dead&limit=1000&cursor=" +
                         EncodeJobCursor(JobsCursorScope(scope), 99));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->filter.queue, "emails");
  EXPECT_EQ(q->filter.states, std::vector<JobState>{JobState::kDead});
  EXPECT_EQ(q->limit, 1000u);
  EXPECT_EQ(q->after_id, 99u);
  q = ParseListJobsQuery("queue=&state=&limit=&cursor=");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 100u);

  auto msg = [](const std::string& query) { return ParseListJobsQuery(query).status(); };
  EXPECT_EQ(msg("limit=0").message(),
            "query parameter \"limit\": must be an integer between 1 and 1000");
  EXPECT_EQ(msg("limit=1001").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("limit=-1").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("limit=1x").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("state=done").message(),
            "query parameter \"state\": must be one or more (comma-separated) of scheduled, ready, "
            "active, succeeded, dead, cancelled");
  EXPECT_EQ(msg("queue=a%20b").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("cursor=abc").message(),
            "query parameter \"cursor\": not a cursor returned by this server for this listing");
  EXPECT_EQ(msg("cursor=0").code(), Code::kInvalidRequest);
  // Regression: a bare id was taken as the cursor, and the largest one wrapped to the start.
  EXPECT_EQ(msg("cursor=18446744073709551615").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("cursor=42").code(), Code::kInvalidRequest);
  EXPECT_EQ(msg("sort=id").message(), "query parameter \"sort\": unknown parameter");
}

TEST(CodecQuery, ListJobsFilters) {
  auto q = ParseListJobsQuery(
      "namespace=t1&queue=q&kind=k.v2&state=dead,ready,dead&tag=a%20b&created_after=1&"
      "created_before=2&finished_after=0&finished_before=1700000000000");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  const JobFilter f = q->filter;
  EXPECT_EQ(f.ns, "t1");
  EXPECT_EQ(f.queue, "q");
  EXPECT_EQ(f.kind, "k.v2");
  EXPECT_EQ(f.states, (std::vector<JobState>{JobState::kReady, JobState::kDead}));  // normalized
  EXPECT_EQ(f.tag, "a b");
  EXPECT_EQ(f.created_after_ms, 1);
  EXPECT_EQ(f.created_before_ms, 2);
  EXPECT_EQ(f.finished_after_ms, 0);
  EXPECT_EQ(f.finished_before_ms, 1700000000000);
  // Empty values are "not given".
  q = ParseListJobsQuery("namespace=&kind=&tag=&created_after=&finished_before=");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->filter.empty());
  auto msg = [](const std::string& query) { return ParseListJobsQuery(query).status().message(); };
  EXPECT_NE(msg("namespace=a%20b").find("\"namespace\""), std::string::npos);
  EXPECT_NE(msg("kind=a/b").find("\"kind\""), std::string::npos);
  EXPECT_NE(msg("state=ready,").find("\"state\""), std::string::npos);
  EXPECT_NE(msg("state=,ready").find("\"state\""), std::string::npos);
  EXPECT_NE(msg("tag=" + std::string(129, 't')).find("\"tag\""), std::string::npos);
  EXPECT_NE(msg("created_after=-1").find("\"created_after\""), std::string::npos);
  EXPECT_NE(msg("created_before=1e3").find("\"created_before\""), std::string::npos);
  EXPECT_NE(msg("finished_after=x").find("\"finished_after\""), std::string::npos);
  EXPECT_NE(msg("finished_before=99999999999999999999").find("\"finished_before\""),
            std::string::npos);
  // A cursor is bound to every filter: issued for one, refused by any other.
  ListQuery scoped;
  scoped.filter = f;
  const std::string cursor = EncodeJobCursor(JobsCursorScope(scoped), 7);
  const std::string base =
      "namespace=t1&queue=q&kind=k.v2&state=ready,dead&tag=a%20b&created_after=1&"
      "created_before=2&finished_after=0&finished_before=1700000000000";
  q = ParseListJobsQuery(base + "&cursor=" + cursor);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->after_id, 7u);
  for (const char* drop : {"namespace=t1&", "queue=q&", "kind=k.v2&", "tag=a%20b&",
                           "created_after=1&", "created_before=2&", "finished_after=0&"}) {
    std::string other = base;
    other.erase(other.find(drop), std::strlen(drop));
    EXPECT_EQ(ParseListJobsQuery(other + "&cursor=" + cursor).status().code(),
              Code::kInvalidRequest)
        << drop;
  }
  EXPECT_EQ(ParseListJobsQuery(base + "0&cursor=" + cursor).status().code(), Code::kInvalidRequest);
}

TEST(CodecQuery, ListDead) {
  auto q = ParseListDeadQuery("queue=a&limit=5");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->filter.states, std::vector<JobState>{JobState::kDead});
  EXPECT_EQ(q->limit, 5u);
  EXPECT_EQ(ParseListDeadQuery("state=ready").status().message(),
            "query parameter \"state\": unknown parameter");
}

TEST(CodecCursor, RoundTripsInItsOwnScopeOnly) {
  ListQuery emails;
  emails.filter.queue = "emails";
  const std::string scope = JobsCursorScope(emails);
  for (JobId id : {JobId{1}, JobId{42}, ~JobId{0}}) {
    std::string token = EncodeJobCursor(scope, id);
    auto back = DecodeJobCursor(scope, token);
    ASSERT_TRUE(back.ok()) << token;
    EXPECT_EQ(*back, id);
    // URL-safe as is: base64url without padding.
    EXPECT_EQ(
        token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        std::string::npos);
  }
  const std::string token = EncodeJobCursor(scope, 42);
  // Through the query parser, with the filter in any order.
  auto q = ParseListJobsQuery("cursor=" + token + "&queue=emails");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->after_id, 42u);
  // Foreign: another queue, another state filter, the dead listing.
  EXPECT_EQ(ParseListJobsQuery("queue=sms&cursor=" + token).status().code(), Code::kInvalidRequest);
  EXPECT_EQ(ParseListJobsQuery("queue=emails&state=ready&cursor=" + token).status().code(),
            Code::kInvalidRequest);
  EXPECT_EQ(ParseListDeadQuery("queue=emails&cursor=" + token).status().code(),
            Code::kInvalidRequest);
  // Tampered: every single-character edit is refused.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (char c : alphabet) {
      if (c == token[i]) continue;
      std::string edited = token;
      edited[i] = c;
      EXPECT_FALSE(DecodeJobCursor(scope, edited).ok()) << edited;
    }
  }
  EXPECT_FALSE(DecodeJobCursor(scope, token.substr(0, token.size() - 1)).ok());
  EXPECT_FALSE(DecodeJobCursor(scope, token + "A").ok());
  EXPECT_FALSE(DecodeJobCursor(scope, token + "=").ok());
  EXPECT_FALSE(DecodeJobCursor(scope, "").ok());
  EXPECT_FALSE(DecodeJobCursor(scope, std::string(600, 'A')).ok());
  // Another version byte with a matching check is still refused.
  EXPECT_FALSE(DecodeCursor(scope, "AgAAAAAAAAAqAAAAAA").ok());
  // The id 0 never starts a page that a cursor could resume.
  EXPECT_FALSE(DecodeJobCursor(scope, EncodeJobCursor(scope, 0)).ok());
}

// Positions of every length (so every base64 remainder, 0, 1 and 2 bytes) and of any bytes come
// back exactly from their own scope, and from no other.
TEST(CodecCursor, AnyPositionRoundTripsInItsScopeOnly) {
  std::string position;
  for (int n = 0; n < 40; ++n) {
    const std::string token = EncodeCursor("scope-a", position);
    EXPECT_LE(token.size(), kMaxCursorChars);
    for (char c : token) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << token;
    }
    auto back = DecodeCursor("scope-a", token);
    ASSERT_TRUE(back.ok()) << n << ": " << back.status().ToString();
    EXPECT_EQ(*back, position) << n;
    EXPECT_EQ(DecodeCursor("scope-b", token).status().code(), Code::kInvalidRequest) << n;
    position += static_cast<char>((n * 97 + 13) & 0xff);  // bytes from the whole range, not text
  }
}

// ---- renderers ----

TEST(CodecRender, ErrorBody) {
  EXPECT_EQ(RenderError(Validation("field \"q\": bad \"quote\"\n")),
            R"({"error":{"code":"validation_failed","message":"field \"q\": bad \"quote\"\n"}})");
}

JobView SampleJob() {
  JobView v;
  v.job.id = 42;
  v.job.queue = "emails";
  v.job.kind = "send";
  v.job.state = JobState::kActive;
  v.job.payload = R"({"user":7})";
  v.job.attempts = 2;
  v.job.tags = {"a\"b"};
  v.job.errors.push_back({1, "lease_expired", "no heartbeat", 1700000000000});
  v.job.created_at_ms = 1700000000000;
  v.lease = LeaseInfo{0xabc, 1700000030000, "w1"};
  return v;
}

TEST(CodecRender, JobObject) {
  auto d = Doc(RenderJob(SampleJob()));
  EXPECT_STREQ(d["id"].GetString(), "42");
  EXPECT_STREQ(d["namespace"].GetString(), "default");
  EXPECT_STREQ(d["state"].GetString(), "active");
  EXPECT_EQ(d["payload"]["user"].GetInt(), 7);
  EXPECT_EQ(d["attempts"].GetInt(), 2);
  EXPECT_EQ(d["backoff"]["initial_ms"].GetInt64(), 1000);
  EXPECT_DOUBLE_EQ(d["backoff"]["multiplier"].GetDouble(), 2.0);
  EXPECT_TRUE(d["idempotency_key"].IsNull());
  EXPECT_TRUE(d["finished_at"].IsNull());
  EXPECT_TRUE(d["result"].IsNull());
  EXPECT_TRUE(d["dead_reason"].IsNull());
  EXPECT_TRUE(d["blocked_reason"].IsNull());
  EXPECT_STREQ(d["tags"][0].GetString(), "a\"b");
  EXPECT_STREQ(d["last_error"]["type"].GetString(), "lease_expired");
  EXPECT_EQ(d["errors"].Size(), 1u);
  EXPECT_EQ(d["errors"][0]["at"].GetInt64(), 1700000000000);
  EXPECT_STREQ(d["lease"]["worker_id"].GetString(), "w1");
  EXPECT_EQ(d["lease"]["expires_at"].GetInt64(), 1700000030000);
  EXPECT_FALSE(d["lease"].HasMember("token"));  // the token stays with the lease holder

  JobView ready = SampleJob();
  ready.lease.reset();
  ready.job.state = JobState::kReady;
  ready.blocked_reason = "paused";
  ready.job.result = "[1]";
  auto r = Doc(RenderJob(ready));
  EXPECT_FALSE(r.HasMember("lease"));
  EXPECT_STREQ(r["blocked_reason"].GetString(), "paused");
  EXPECT_EQ(r["result"][0].GetInt(), 1);
}

TEST(CodecRender, PagesAndLists) {
  JobPage page;
  page.items.push_back(SampleJob());
  page.next_after_id = 42;
  auto d = Doc(RenderJobPage(page, "s"));
  EXPECT_EQ(d["items"].Size(), 1u);
  EXPECT_STREQ(d["next_cursor"].GetString(), EncodeJobCursor("s", 42).c_str());
  page.next_after_id = 0;
  EXPECT_TRUE(Doc(RenderJobPage(page, "s"))["next_cursor"].IsNull());
  EXPECT_EQ(RenderJobPage(JobPage{}, "s"), R"({"items":[],"next_cursor":null})");
}

TEST(CodecRender, PagesStopAtTheByteCapAndTheCursorCarriesOn) {
  JobPage page;
  for (JobId id = 1; id <= 10; ++id) {
    JobView v = SampleJob();
    v.job.id = id;
    v.job.payload = "\"" + std::string(1000, 'x') + "\"";
    page.items.push_back(std::move(v));
  }
  page.next_after_id = 0;  // the whole listing
  const std::size_t one = RenderJob(page.items[0]).size();
  const std::string full = RenderJobPage(page, "s");
  EXPECT_TRUE(Doc(full)["next_cursor"].IsNull());
  EXPECT_EQ(Doc(full)["items"].Size(), 10u);

  // Room for three jobs: three are sent, and the cursor resumes after the third.
  const std::string capped = RenderJobPage(page, "s", 3 * one + 200);
  EXPECT_LE(capped.size(), 3 * one + 200);
  auto d = Doc(capped);
  ASSERT_EQ(d["items"].Size(), 3u);
  EXPECT_STREQ(d["items"][2]["id"].GetString(), "3");
  EXPECT_EQ(DecodeJobCursor("s", d["next_cursor"].GetString()).value(), 3u);

  // A cap below one job still sends one job, so a listing always makes progress.
  auto tiny = Doc(RenderJobPage(page, "s", 10));
  ASSERT_EQ(tiny["items"].Size(), 1u);
  EXPECT_EQ(DecodeJobCursor("s", tiny["next_cursor"].GetString()).value(), 1u);
}

EnqueueOutcome Outcome(JobId id, JobState state, bool duplicate) {
  EnqueueOutcome o;
  o.id = id;
  o.state = state;
  o.duplicate = duplicate;
  return o;
}

TEST(CodecRender, EnqueueResults) {
  EXPECT_EQ(RenderEnqueueOutcome(Outcome(7, JobState::kReady, false)),
            R"({"id":"7","state":"ready"})");
  EXPECT_EQ(RenderEnqueueOutcome(Outcome(7, JobState::kScheduled, true)),
            R"({"id":"7","state":"scheduled","duplicate":true})");
  std::vector<Result<EnqueueOutcome>> results;
  results.push_back(Outcome(1, JobState::kReady, false));
  results.push_back(Validation("field \"kind\": is required"));
  EXPECT_EQ(RenderEnqueueResults(results),
            R"({"results":[{"id":"1","state":"ready"},{"error":{"code":"validation_failed",)"
            R"("message":"field \"kind\": is required"}}]})");
}

TEST(CodecRender, LeasedJobs) {
  LeasedJob j;
  j.id = 9;
  j.ns = "default";
  j.queue = "q";
  j.kind = "k";
  j.payload = "null";
  j.attempt = 1;
  j.max_attempts = 10;
  j.created_at_ms = 5;
  j.lease = {0xff, 30005, "w"};
  auto d = Doc(RenderLeasedJobs({j}));
  const auto& o = d["jobs"][0];
  EXPECT_STREQ(o["id"].GetString(), "9");
  EXPECT_TRUE(o["payload"].IsNull());
  EXPECT_EQ(o["attempt"].GetInt(), 1);
  EXPECT_STREQ(o["lease"]["token"].GetString(), "00000000000000ff");
  EXPECT_EQ(o["lease"]["expires_at"].GetInt64(), 30005);
  EXPECT_EQ(RenderLeasedJobs({}), R"({"jobs":[]})");
}

TEST(CodecRender, SmallBodies) {
  EXPECT_EQ(RenderHeartbeat({123, true}), R"({"expires_at":123,"cancel_requested":true})");
  JobState s = JobState::kDead;
  EXPECT_EQ(RenderIdState(3, &s), R"({"id":"3","state":"dead"})");
  EXPECT_EQ(RenderIdState(3, nullptr), R"({"id":"3","state":null})");
  EXPECT_EQ(
      RenderCompleteResults({Status::Ok()}, {StaleLease("old token")}),
      R"({"acks":[{"ok":true}],"fails":[{"error":{"code":"stale_lease","message":"old token"}}]})");
  EXPECT_EQ(RenderReplayed(12), R"({"replayed":12})");
  EXPECT_EQ(RenderStatusWord("ok"), R"({"status":"ok"})");
  BrokerInfo info{"0.1.0", "0123456789ab", 17, 3, 9, true, 0, 0, "wal", "full"};
  EXPECT_EQ(
      RenderInfo(info),
      R"({"version":"0.1.0","commit":"0123456789ab","started_at":17,"live_jobs":3,"commits":9,"draining":true,)"
      R"("store":{"journal_mode":"wal","synchronous":"full"}})");
  info.store_journal_mode.clear();
  info.store_synchronous.clear();
  EXPECT_TRUE(RenderInfo(info).ends_with(R"("store":{"journal_mode":null,"synchronous":null}})"));
}

TEST(CodecRender, Queue) {
  QueueInfo q;
  q.config.name = "emails";
  q.config.paused = true;
  q.counts["ready"] = 4;
  q.oldest_ready_age_ms = 250;
  q.waiting_workers = 2;
  auto d = Doc(RenderQueue(q));
  EXPECT_STREQ(d["name"].GetString(), "emails");
  EXPECT_TRUE(d["paused"].GetBool());
  EXPECT_EQ(d["counts"]["ready"].GetUint64(), 4u);
  EXPECT_EQ(d["counts"]["dead"].GetUint64(), 0u);
  EXPECT_EQ(d["counts"].MemberCount(), 6u);
  EXPECT_EQ(d["retention"]["dead_ms"].GetInt64(), Retention{}.dead_ms);
  EXPECT_EQ(d["oldest_ready_age_ms"].GetInt64(), 250);
  EXPECT_EQ(d["waiting_workers"].GetUint(), 2u);
}

TEST(CodecRender, QueuePageIsCappedByBytesAndCursorResumesAfterTheLastRendered) {
  QueuePage page;
  for (const char* name : {"a", "b", "c"}) {
    QueueInfo q;
    q.config.name = name;
    page.items.push_back(q);
  }
  auto whole = Doc(RenderQueuePage(page));
  EXPECT_EQ(whole["items"].Size(), 3u);
  EXPECT_TRUE(whole["next_cursor"].IsNull());
  page.next_after = "c";
  auto more = Doc(RenderQueuePage(page));
  ASSERT_TRUE(more["next_cursor"].IsString());
  auto after = DecodeQueueCursor(more["next_cursor"].GetString());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "c");
  // A cap that fits one and a half items: one item, and the cursor resumes after it.
  const std::size_t one = RenderQueue(page.items[0]).size();
  auto capped = Doc(RenderQueuePage(page, one * 3 / 2 + 20));
  EXPECT_EQ(capped["items"].Size(), 1u);
  after = DecodeQueueCursor(capped["next_cursor"].GetString());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, "a");
  // At least one item, whatever the cap.
  EXPECT_EQ(Doc(RenderQueuePage(page, 1))["items"].Size(), 1u);
}

TEST(CodecParse, QueueListQueryAndCursors) {
  auto q = ParseListQueuesQuery("");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 100u);
  EXPECT_EQ(q->after, "");
  q = ParseListQueuesQuery("limit=1000&cursor=" + EncodeQueueCursor("x.y:z"));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->limit, 1000u);
  EXPECT_EQ(q->after, "x.y:z");
  const std::vector<std::string> bads = {
      "limit=0", "limit=1001", "limit=x", "state=ready", "cursor=abc",
      "cursor=" + EncodeJobCursor(JobListScope("jobs", JobFilter{}.Scope()), 5),
      // A well-formed cursor whose name is not a valid queue name.
      "cursor=" + EncodeCursor("queues", "no spaces")};
  for (const std::string& bad : bads) {
    auto r = ParseListQueuesQuery(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kInvalidRequest) << bad;
    }
  }
}

TEST(CodecParse, CreateQuery) {
  EXPECT_EQ(ParseCreateQuery("").value(), false);
  EXPECT_EQ(ParseCreateQuery("create=true").value(), true);
  EXPECT_EQ(ParseCreateQuery("create=false").value(), false);
  for (const char* bad : {"create=1", "create=yes", "create", "other=true"}) {
    EXPECT_FALSE(ParseCreateQuery(bad).ok()) << bad;
  }
}

TEST(CodecBulk, EveryFilterFieldParsesUnderItsQueryName) {
  auto r = ParseBulk(BulkAction::kReplay,
                     R"({"namespace":"t","queue":"q","kind":"k","state":"cancelled,dead",)"
                     R"("tag":"a b","created_after":1,"created_before":2,"finished_after":3,)"
                     R"("finished_before":4,"limit":10000,"dry_run":true})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->action, BulkAction::kReplay);
  EXPECT_EQ(r->filter.ns, "t");
  EXPECT_EQ(r->filter.queue, "q");
  EXPECT_EQ(r->filter.kind, "k");
  EXPECT_EQ(r->filter.states, (std::vector<JobState>{JobState::kDead, JobState::kCancelled}));
  EXPECT_EQ(r->filter.tag, "a b");
  EXPECT_EQ(r->filter.created_after_ms, 1);
  EXPECT_EQ(r->filter.created_before_ms, 2);
  EXPECT_EQ(r->filter.finished_after_ms, 3);
  EXPECT_EQ(r->filter.finished_before_ms, 4);
  EXPECT_EQ(r->limit, 10000u);
  EXPECT_TRUE(r->dry_run);
  EXPECT_EQ(r->after_id, 0u);
  // States as an array mean the same; the default limit is 1000.
  auto arr = ParseBulk(BulkAction::kReplay, R"({"queue":"q","state":["dead"]})");
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(arr->filter.states, std::vector<JobState>{JobState::kDead});
  EXPECT_EQ(arr->limit, kDefaultBulkLimit);
  auto all = ParseBulk(BulkAction::kCancel, R"({"all":true})");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->filter.states.size(), 3u) << "narrowed to the live states";
}

TEST(CodecBulk, ACursorRoundTripsOnlyWithItsOperationAndFilter) {
  auto r = ParseBulk(BulkAction::kDelete, R"({"queue":"q"})");
  ASSERT_TRUE(r.ok());
  BulkOutcome out;
  out.next_after_id = 0;  // a stop before the first job: position 0 is a valid cursor
  const std::string body = RenderBulkOutcome(*r, out);
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  ASSERT_TRUE(doc.IsObject() && doc["next_cursor"].IsString()) << body;
  const std::string cursor = doc["next_cursor"].GetString();
  ASSERT_FALSE(cursor.empty()) << body;
  auto again = ParseBulk(BulkAction::kDelete, R"({"queue":"q","cursor":")" + cursor + "\"}");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->after_id, 0u);
  out.next_after_id = 77;
  const std::string later = EncodeBulkCursor(BulkAction::kDelete, r->filter, 77);
  auto at77 = ParseBulk(BulkAction::kDelete, R"({"queue":"q","cursor":")" + later + "\"}");
  ASSERT_TRUE(at77.ok());
  EXPECT_EQ(at77->after_id, 77u);
  for (const std::string& other : {R"({"queue":"r","cursor":")" + later + "\"}",
                                   R"({"queue":"q","state":"dead","cursor":")" + later + "\"}"}) {
    EXPECT_EQ(ParseBulk(BulkAction::kDelete, other).status().code(), Code::kInvalidRequest)
        << other;
  }
  EXPECT_EQ(
      ParseBulk(BulkAction::kReplay, R"({"queue":"q","cursor":")" + later + "\"}").status().code(),
      Code::kInvalidRequest)
      << "another operation";
  EXPECT_NE(body.find(R"("deleted":0)"), std::string::npos) << body;
  out.next_after_id.reset();
  EXPECT_NE(RenderBulkOutcome(*r, out).find(R"("next_cursor":null)"), std::string::npos);
}

TEST(CodecBulk, BadBodiesAreRefusedNamingTheField) {
  struct Case {
    BulkAction action;
    std::string body;
    Code code;
    std::string words;
  };
  const std::vector<Case> cases = {
      {BulkAction::kCancel, "", Code::kValidation, "filter is empty"},
      {BulkAction::kCancel, "{}", Code::kValidation, "filter is empty"},
      {BulkAction::kCancel, R"({"all":false})", Code::kValidation, "filter is empty"},
      {BulkAction::kCancel, R"({"all":true,"kind":"k"})", Code::kValidation, "\"all\""},
      {BulkAction::kCancel, R"({"queue":"q","bogus":1})", Code::kValidation, "bogus"},
      {BulkAction::kCancel, R"({"queue":"q","limit":0})", Code::kValidation, "limit"},
      {BulkAction::kCancel, R"({"queue":"q","limit":10001})", Code::kValidation, "limit"},
      {BulkAction::kCancel, R"({"queue":"q","state":"nope"})", Code::kValidation, "state"},
      {BulkAction::kCancel, R"({"queue":"q","state":[]})", Code::kValidation, "state"},
      {BulkAction::kCancel, R"({"queue":"q","state":[1]})", Code::kValidation, "state"},
      {BulkAction::kDelete, R"({"state":"active"})", Code::kValidation, "not active"},
      {BulkAction::kCancel, R"({"finished_after":1})", Code::kValidation, "finished_after"},
      {BulkAction::kCancel, R"({"tag":""})", Code::kValidation, "tag"},
      {BulkAction::kCancel, R"({"queue":"q","created_after":-5})", Code::kValidation,
       "created_after"},
      {BulkAction::kCancel, R"({"queue":"q","cursor":"AQ"})", Code::kInvalidRequest, "cursor"},
      {BulkAction::kCancel, R"({"queue":"q","cursor":7})", Code::kValidation, "cursor"},
      {BulkAction::kCancel, R"({"queue":"q","dry_run":"yes"})", Code::kValidation, "dry_run"},
      {BulkAction::kCancel, "[1]", Code::kValidation, "JSON object"},
      {BulkAction::kCancel, "{", Code::kInvalidJson, ""},
  };
  for (const Case& c : cases) {
    auto r = ParseBulk(c.action, c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), c.code) << c.body << ": " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.words), std::string::npos)
        << c.body << ": " << r.status().message();
  }
}

}  // namespace
}  // namespace ym::net

namespace ym::net {
namespace {

// Execution timeout (docs/api.md, "Execution timeout"): `timeout_ms` in the enqueue spec and the
// queue patch is 0 (none) or 1..86400000, with one clear message; the leased job, the job and
// the queue carry it, null when there is none.
TEST(CodecTimeout, ParsesInTheSpecAndThePatch) {
  auto spec = ParseEnqueue(R"({"queue":"q","kind":"k","timeout_ms":1500})", Limits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->timeout_ms, 1500);
  auto zero = ParseEnqueue(R"({"queue":"q","kind":"k","timeout_ms":0})", Limits());
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->timeout_ms, 0) << "0 is kept: it opts out of the queue's timeout";
  auto absent = ParseEnqueue(R"({"queue":"q","kind":"k","timeout_ms":null})", Limits());
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->timeout_ms.has_value());
  auto patch = ParseQueuePatch("q", R"({"timeout_ms":86400000})");
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  EXPECT_EQ(patch->timeout_ms, 86400000);
  const std::string expected =
      "field \"timeout_ms\": must be an integer number of milliseconds between 1 and 86400000, "
      "or 0 for no timeout";
  for (const char* bad : {"-1", "86400001", "1.5", "\"10\"", "true", "[]"}) {
    SCOPED_TRACE(bad);
    auto s =
        ParseEnqueue(std::string(R"({"queue":"q","kind":"k","timeout_ms":)") + bad + "}", Limits());
    EXPECT_EQ(s.status().code(), Code::kValidation);
    EXPECT_EQ(s.status().message(), expected);
    auto p = ParseQueuePatch("q", std::string(R"({"timeout_ms":)") + bad + "}");
    EXPECT_EQ(p.status().code(), Code::kValidation);
    EXPECT_EQ(p.status().message(), expected);
  }
}

TEST(CodecTimeout, IsRenderedWithTheDeadlineOrNull) {
  LeasedJob j;
  j.id = 9;
  j.queue = "q";
  j.kind = "k";
  j.payload = "null";
  j.timeout_ms = 1500;
  j.lease = {0xff, 31500, "w", 31500};
  auto d = Doc(RenderLeasedJobs({j}));
  EXPECT_EQ(d["jobs"][0]["timeout_ms"].GetInt64(), 1500);
  EXPECT_EQ(d["jobs"][0]["lease"]["deadline_at"].GetInt64(), 31500);
  j.timeout_ms = 0;
  j.lease.deadline_at_ms = 0;
  d = Doc(RenderLeasedJobs({j}));
  EXPECT_TRUE(d["jobs"][0]["timeout_ms"].IsNull());
  EXPECT_TRUE(d["jobs"][0]["lease"]["deadline_at"].IsNull());

  JobView v;
  v.job.id = 3;
  v.job.state = JobState::kActive;
  v.job.timeout_ms = 2000;
  v.lease = LeaseInfo{1, 5000, "w", 6000};
  auto o = Doc(RenderJob(v));
  EXPECT_EQ(o["timeout_ms"].GetInt64(), 2000);
  EXPECT_EQ(o["lease"]["deadline_at"].GetInt64(), 6000);

  QueueInfo q;
  q.config.name = "q";
  EXPECT_TRUE(Doc(RenderQueue(q))["timeout_ms"].IsNull());
  q.config.timeout_ms = 2500;
  EXPECT_EQ(Doc(RenderQueue(q))["timeout_ms"].GetInt64(), 2500);
}

// /readyz and /livez: every check by name, and a 503 error naming every failed one with the
// code of the first.
TEST(CodecHealth, EveryCheckIsNamedAndFailuresAreSummed) {
  std::vector<HealthCheck> checks = {{"recovered", Status::Ok()}, {"core_alive", Status::Ok()}};
  EXPECT_TRUE(HealthFailure(checks).ok());
  EXPECT_EQ(RenderHealth("ready", checks),
            R"({"status":"ready","checks":{"recovered":"ok","core_alive":"ok"}})");
  checks = {{"recovered", Status::Ok()},
            {"store_writable", StoreUnavailable("read-only: disk full")},
            {"accepting", Unavailable("draining")}};
  const Status failure = HealthFailure(checks);
  EXPECT_EQ(failure.code(), Code::kStoreUnavailable);
  EXPECT_EQ(failure.message(),
            "not ready: store_writable: read-only: disk full; accepting: draining");
  EXPECT_EQ(
      RenderHealth("ready", checks),
      R"({"status":"not_ready","checks":{"recovered":"ok","store_writable":"read-only: )"
      R"(disk full","accepting":"draining"},"error":{"code":"store_unavailable",)"
      R"("message":"not ready: store_writable: read-only: disk full; accepting: draining"}})");
}

}  // namespace
}  // namespace ym::net
