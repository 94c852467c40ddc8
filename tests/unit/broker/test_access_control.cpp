// Password secrets (plain, Mosquitto's $6$ and $7$) and ACL rules (NanoMQ's format) as pure
// data: broker/password_hash.hpp and broker/access_control.hpp.
#include <gtest/gtest.h>

#include <memory>

#include "broker/access_control.hpp"
#include "broker/password_hash.hpp"

namespace harbor::broker {
namespace {

// Written by Debian's mosquitto_passwd 2.0.11 (`mosquitto_passwd -b FILE carol s3`).
constexpr const char* kMosquittoPbkdf2 =
    "$7$101$n7lI9l1ozJy0xnMX$9b4wIr8pIidt4J73E5t367QSlzfHScr3ASbFiUoDIfZ1U9gEmrw5lcRZXhZVLZVTHS"
    "StLBx43SPjj3tfliLCow==";
// SHA-512("hunter2" + "0123456789ab") with that salt, computed with Python's hashlib.
constexpr const char* kSha512 =
    "$6$MDEyMzQ1Njc4OWFi$Kgl3AxuVCetFEGDDZOAh44c3ssh9wvPft10MPC9Tjr1rwsIDmYUEICH/zUOFhM8vCQKmMb8"
    "nXrQTl7q2T8alUw==";

TEST(PasswordHash, PlainSecretsCompareWhole) {
  EXPECT_EQ(secret_kind("public"), SecretKind::Plain);
  EXPECT_TRUE(verify_password("public", "public"));
  EXPECT_FALSE(verify_password("public", "publi"));
  EXPECT_FALSE(verify_password("public", "public "));
  EXPECT_FALSE(verify_password("public", ""));
  EXPECT_TRUE(verify_password(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
}

TEST(PasswordHash, MosquittoPbkdf2FromMosquittoPasswd) {
  EXPECT_EQ(secret_kind(kMosquittoPbkdf2), SecretKind::Pbkdf2Sha512);
  EXPECT_TRUE(verify_password(kMosquittoPbkdf2, "s3"));
  EXPECT_FALSE(verify_password(kMosquittoPbkdf2, "s4"));
  EXPECT_FALSE(verify_password(kMosquittoPbkdf2, ""));
}

TEST(PasswordHash, MosquittoSha512) {
  EXPECT_EQ(secret_kind(kSha512), SecretKind::Sha512);
  EXPECT_TRUE(verify_password(kSha512, "hunter2"));
  EXPECT_FALSE(verify_password(kSha512, "hunter3"));
}

TEST(PasswordHash, MalformedHashesMatchNothing) {
  for (const char* bad :
       {"$7$", "$7$abc$MDEy$AAAA", "$7$0$MDEyMzQ1Njc4OWFi$AAAA", "$7$101$not base64!$AAAA",
        "$6$MDEyMzQ1Njc4OWFi$AAAA", "$6$MDEyMzQ1Njc4OWFi", "$7$99999999999$MDEy$AAAA"}) {
    EXPECT_EQ(secret_kind(bad), SecretKind::Malformed) << bad;
    EXPECT_FALSE(verify_password(bad, "")) << bad;
    EXPECT_FALSE(verify_password(bad, bad)) << bad;  // never compared as plain text
  }
}

TEST(PasswordHash, NewHashesVerifyAndAreSalted) {
  const std::string a = hash_password("correct horse", 50);
  const std::string b = hash_password("correct horse", 50);
  ASSERT_EQ(a.rfind("$7$50$", 0), 0u) << a;
  EXPECT_NE(a, b);  // a fresh salt each time
  EXPECT_TRUE(verify_password(a, "correct horse"));
  EXPECT_TRUE(verify_password(b, "correct horse"));
  EXPECT_FALSE(verify_password(a, "correct horsE"));
}

TEST(IpRange, AddressesAndNetworks) {
  auto net = IpRange::parse("10.1.0.0/16");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains("10.1.200.3"));
  EXPECT_FALSE(net->contains("10.2.0.1"));
  EXPECT_TRUE(net->contains("::ffff:10.1.2.3"));  // v4 client on a dual-stack socket
  auto one = IpRange::parse("127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains("127.0.0.1"));
  EXPECT_FALSE(one->contains("127.0.0.2"));
  auto v6 = IpRange::parse("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  EXPECT_FALSE(v6->contains("10.0.0.1"));
  auto odd = IpRange::parse("192.168.1.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("192.168.1.200"));
  EXPECT_FALSE(odd->contains("192.168.1.127"));
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0/8", "host", "::1/129", "1.2.3.4/"})
    EXPECT_FALSE(IpRange::parse(bad)) << bad;
}

AclRule rule(bool allow, uint8_t actions, std::vector<std::string> topics,
             std::vector<AclWho> who = {}) {
  AclRule r;
  r.allow = allow;
  r.actions = actions;
  r.topics = std::move(topics);
  r.who = std::move(who);
  return r;
}

AclWho user(std::string name) {
  AclWho w;
  w.username = std::move(name);
  return w;
}

std::shared_ptr<const AccessControl> make(std::vector<AclRule> rules, bool no_match_allow) {
  AccessSettings s;
  s.rules = std::move(rules);
  s.no_match_allow = no_match_allow;
  return std::make_shared<const AccessControl>(std::move(s));
}

TEST(AccessControl, ConnectChecks) {
  AccessSettings s;
  s.allow_anonymous = false;
  s.check_users = true;
  s.passwords = {{"admin", "public"}, {"carol", kMosquittoPbkdf2}};
  AccessControl ac(s);
  EXPECT_EQ(ac.check_connect("admin", "public"), ConnectVerdict::Accept);
  EXPECT_EQ(ac.check_connect("carol", "s3"), ConnectVerdict::Accept);
  EXPECT_EQ(ac.check_connect("admin", "wrong"), ConnectVerdict::BadCredentials);
  EXPECT_EQ(ac.check_connect("admin", std::nullopt), ConnectVerdict::BadCredentials);
  EXPECT_EQ(ac.check_connect("nobody", "public"), ConnectVerdict::BadCredentials);
  EXPECT_EQ(ac.check_connect(std::nullopt, std::nullopt), ConnectVerdict::NotAuthorized);
  s.allow_anonymous = true;
  AccessControl open(s);
  EXPECT_EQ(open.check_connect(std::nullopt, std::nullopt), ConnectVerdict::Accept);
  EXPECT_EQ(open.check_connect("nobody", "x"), ConnectVerdict::BadCredentials);  // still checked
  s.passwords.clear();  // a password file that names no user: every user name fails
  EXPECT_EQ(AccessControl(s).check_connect("admin", "public"), ConnectVerdict::BadCredentials);
  s.check_users = false;  // no password file: a user name is not checked
  EXPECT_EQ(AccessControl(s).check_connect("admin", "x"), ConnectVerdict::Accept);
  s.allow_anonymous = false;
  EXPECT_EQ(AccessControl(s).check_connect("admin", "x"), ConnectVerdict::NotAuthorized);
}

TEST(AccessControl, NanoMqExampleRulesFirstMatchWins) {
  // nanomq_acl.conf with its commented rule in: dashboard may subscribe to $SYS/#,
  // nobody else may subscribe to $SYS/# or #, everything else is allowed.
  auto ac =
      make({rule(true, kAclSubscribe, {"$SYS/#"}, {user("dashboard")}),
            rule(false, kAclSubscribe, {"$SYS/#", "#"}, {user("#")}), rule(true, kAclPubSub, {})},
           false);
  ClientAcl dash(ac, "dashboard", "d1", "127.0.0.1");
  ClientAcl other(ac, "eve", "e1", "127.0.0.1");
  ClientAcl anon(ac, std::nullopt, "a1", "127.0.0.1");
  EXPECT_TRUE(dash.may_subscribe(ac, "$SYS/broker/uptime"));
  EXPECT_TRUE(dash.may_subscribe(ac, "$SYS/#"));
  EXPECT_FALSE(other.may_subscribe(ac, "$SYS/#"));
  EXPECT_FALSE(other.may_subscribe(ac, "a/b"));  // "#" overlaps every filter...
  EXPECT_FALSE(anon.may_subscribe(ac, "a/b"));   // ..."#" user matches anonymous too
  EXPECT_TRUE(other.may_publish(ac, "a/b"));     // publish falls to the last rule
  EXPECT_FALSE(dash.may_subscribe(ac, "a/b"));
}

TEST(AccessControl, PlaceholdersAreFilledPerClientAndCannotWiden) {
  auto ac = make({rule(true, kAclPubSub, {"users/%u/#", "clients/${clientid}"})}, false);
  ClientAcl alice(ac, "alice", "dev-1", "127.0.0.1");
  EXPECT_TRUE(alice.may_publish(ac, "users/alice/x"));
  EXPECT_TRUE(alice.may_subscribe(ac, "users/alice/+"));
  EXPECT_FALSE(alice.may_publish(ac, "users/bob/x"));
  EXPECT_FALSE(alice.may_subscribe(ac, "users/#"));  // wider than the rule
  EXPECT_TRUE(alice.may_publish(ac, "clients/dev-1"));
  EXPECT_FALSE(alice.may_publish(ac, "clients/dev-2"));
  ClientAcl anon(ac, std::nullopt, "dev-2", "127.0.0.1");
  EXPECT_FALSE(anon.may_publish(ac, "users/%u/x"));  // no user name: the topic is left out
  EXPECT_TRUE(anon.may_publish(ac, "clients/dev-2"));
  ClientAcl wild(ac, "#", "+", "127.0.0.1");  // names holding wildcards widen nothing
  EXPECT_FALSE(wild.may_publish(ac, "users/x/y"));
  EXPECT_FALSE(wild.may_publish(ac, "clients/x"));
}

TEST(AccessControl, DenyRulesRefuseOverlappingSubscriptions) {
  auto ac =
      make({rule(false, kAclSubscribe, {"sensors/secret"}), rule(true, kAclPubSub, {})}, false);
  ClientAcl c(ac, std::nullopt, "c", "127.0.0.1");
  EXPECT_FALSE(c.may_subscribe(ac, "sensors/secret"));
  EXPECT_FALSE(c.may_subscribe(ac, "sensors/#"));  // would receive sensors/secret
  EXPECT_FALSE(c.may_subscribe(ac, "+/secret"));
  EXPECT_TRUE(c.may_subscribe(ac, "sensors/public"));
  EXPECT_TRUE(c.may_publish(ac, "sensors/secret"));  // the rule is for subscribe only
}

TEST(AccessControl, WhoConditionsAndOrAddress) {
  AclRule both = rule(true, kAclPubSub, {"t"});
  AclWho u = user("u1");
  AclWho net;
  net.ipaddr = IpRange::parse("10.0.0.0/8");
  both.who = {u, net};  // and
  AclRule either = rule(true, kAclPubSub, {"e"});
  AclWho cid;
  cid.client_id = "c9";
  either.who = {u, cid};
  either.combine = AclRule::Combine::Any;
  auto ac = make({both, either}, false);
  EXPECT_TRUE(ClientAcl(ac, "u1", "x", "10.2.3.4").may_publish(ac, "t"));
  EXPECT_FALSE(ClientAcl(ac, "u1", "x", "192.168.0.1").may_publish(ac, "t"));
  EXPECT_FALSE(ClientAcl(ac, "u2", "x", "10.2.3.4").may_publish(ac, "t"));
  EXPECT_TRUE(ClientAcl(ac, "u2", "c9", "1.1.1.1").may_publish(ac, "e"));
  EXPECT_TRUE(ClientAcl(ac, "u1", "zz", "1.1.1.1").may_publish(ac, "e"));
  EXPECT_FALSE(ClientAcl(ac, "u2", "zz", "1.1.1.1").may_publish(ac, "e"));
}

TEST(AccessControl, NoMatchAndCacheFollowAReload) {
  auto deny_all = make({rule(false, kAclPublish, {"blocked/#"})}, true);
  ClientAcl c(deny_all, std::nullopt, "c", "127.0.0.1");
  for (int i = 0; i < 3; ++i) {  // cached after the first
    EXPECT_FALSE(c.may_publish(deny_all, "blocked/a"));
    EXPECT_TRUE(c.may_publish(deny_all, "free/a"));  // no_match = allow
  }
  auto reloaded = make({rule(true, kAclPublish, {"blocked/#"})}, false);
  EXPECT_TRUE(c.may_publish(reloaded, "blocked/a"));  // the cache is for the old snapshot
  EXPECT_FALSE(c.may_publish(reloaded, "free/a"));    // no_match = deny now
}

TEST(AccessControl, DollarTopicsFollowTheWildcardRule) {
  auto ac = make({rule(true, kAclPubSub, {"#"})}, false);
  ClientAcl c(ac, std::nullopt, "c", "127.0.0.1");
  EXPECT_TRUE(c.may_publish(ac, "a/b"));
  EXPECT_FALSE(c.may_publish(ac, "$SYS/x"));  // "#" does not match $ topics
  auto every = make({rule(true, kAclPubSub, {})}, false);
  ClientAcl d(every, std::nullopt, "d", "127.0.0.1");
  EXPECT_TRUE(d.may_publish(every, "$SYS/x"));  // no topics: every topic
}

}  // namespace
}  // namespace harbor::broker
