// libFuzzer target for a server TlsSession fed what a client might send. The first input
// byte is the chunk size the rest is fed in (0: all at once); the session's certificate is
// self-signed, made at start-up. Properties checked: no crash, no leak; an ended session
// stays ended and ignores input; a failure always has a reason; nothing is held; no more
// plaintext comes out than ciphertext went in; write() and close() after anything are safe.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "support/test_pki.hpp"
#include "wire/tls.hpp"

using namespace harbor::wire;

namespace {

std::shared_ptr<const TlsContext> g_context;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  support::TempDir dir;
  auto key = support::make_key();
  auto cert =
      support::make_cert({.common_name = "localhost", .alt_names = "DNS:localhost"}, key.get());
  support::write_pem(dir.file("cert.pem"), {cert.get()});
  support::write_pem(dir.file("key.pem"), key.get());
  auto context =
      TlsContext::server({.certfile = dir.file("cert.pem"), .keyfile = dir.file("key.pem")});
  if (!context) {
    std::fprintf(stderr, "fuzz_tls_server: %s\n", context.error().c_str());
    std::abort();
  }
  g_context = *context;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = data[0] == 0 ? size : data[0];
  const std::span<const uint8_t> input(data + 1, size - 1);

  TlsSession server(g_context);
  std::string plain, cipher_out;
  for (size_t at = 0; at < input.size(); at += chunk) {
    const auto piece = input.subspan(at, std::min(chunk, input.size() - at));
    const TlsState before = server.state();
    const size_t out_before = cipher_out.size();
    const TlsState after = server.feed(piece, plain, cipher_out);
    const bool ended = before == TlsState::Closed || before == TlsState::Failed;
    if (ended && (after != before || cipher_out.size() != out_before)) __builtin_trap();
    if (after != server.state()) __builtin_trap();
    if (after == TlsState::Failed && server.failure_reason().empty()) __builtin_trap();
    if (server.held_plaintext() != 0) __builtin_trap();
    if (plain.size() > at + piece.size()) __builtin_trap();
  }
  const bool wrote = server.write("x", cipher_out);
  if (wrote != (server.state() == TlsState::Handshaking || server.established())) __builtin_trap();
  server.close(cipher_out);
  if (server.state() == TlsState::Handshaking || server.established()) __builtin_trap();
  return 0;
}
