// SPDX-License-Identifier: MIT
// The C++ wrappers: RAII handles that close what they own, errors as values,
// typed append/reserve/next. Built with -Wall -Wextra -Werror by g++ and
// clang++ (tests/test_cxx.sh).
#define PICOLOG_IMPLEMENTATION
#define PICOLOG_ENCRYPT                 // encryption compiled in: plain logs stay plain without a key
#define PINNACLE_PERSIST_IMPLEMENTATION
#define VAULT_IMPLEMENTATION
#include "pinnacle_persist.h"
#include "vault.h"
#include "t.h"

#include <string>
#include <type_traits>
#include <vector>

struct Trade { uint64_t id; int64_t price; int64_t qty; };

static void test_log_append_reserve_and_read_back_typed() {
    std::string dir = std::string(t_dir("cxx_log")) + "/log";
    {
        auto lg = plg::log::open(dir.c_str());
        REQUIRE(lg.ok());
        Trade t1 = {1, 100, 5};
        auto s1 = lg->append(t1);
        REQUIRE(s1.ok());
        CHECK_EQ(s1.value(), 1);
        auto slot = lg->reserve<Trade>();
        REQUIRE(slot.ok());
        (*slot)->id = 2; (*slot)->price = 101; (*slot)->qty = 6;
        auto s2 = lg->commit();
        REQUIRE(s2.ok());
        CHECK_EQ(s2.value(), 2);
        CHECK(lg->wait(2, 5000000000ll).ok());
        CHECK(lg->durable() >= 2);
        CHECK(lg->close().ok());
        CHECK(!*lg);                                    // closed: the handle is empty
        CHECK(lg->close().ok());                        // and closing again is a no-op
    }
    auto rd = plg::reader::open(dir.c_str());
    REQUIRE(rd.ok());
    Trade t;
    uint64_t seq = 0;
    auto r = rd->next(t, &seq);
    CHECK(r.ok() && r.value());
    CHECK_EQ(seq, 1); CHECK_EQ(t.price, 100);
    r = rd->next(t, &seq);
    CHECK(r.ok() && r.value());
    CHECK_EQ(seq, 2); CHECK_EQ(t.id, 2); CHECK_EQ(t.qty, 6);
    r = rd->next(t, &seq);
    CHECK(r.ok() && !r.value());                        // end of the log
    CHECK(rd->seek(1).ok());
    struct Small { uint32_t x; } s;
    auto bad = rd->next(s);                             // a Trade is not a Small
    CHECK(!bad);
    CHECK_EQ(bad.error(), PLG_ETYPE);
}

// A key rotated once: the reader overload that takes every key reads both
// parts; with the new key alone it is an error value (PLG_EKEY), not a throw.
static void test_reader_of_a_rotated_log_takes_its_keys() {
    std::string dir = std::string(t_dir("cxx_rotated")) + "/log";
    uint8_t k1[32], k2[32];
    std::memset(k1, 0x11, sizeof k1); std::memset(k2, 0x22, sizeof k2);
    const uint8_t *old[1] = {k1};
    for (int part = 0; part < 2; part++) {
        plg_config c;
        std::memset(&c, 0, sizeof c);
        c.path = dir.c_str();
        c.segment_size = 64u << 10;
        c.encrypt_key = part ? k2 : k1;
        if (part) { c.old_keys = old; c.n_old_keys = 1; }
        auto lg = plg::log::open(c);
        REQUIRE(lg.ok());
        for (uint64_t i = 0; i < 1500; i++) {          // past a segment: both keys in use
            Trade t = {(uint64_t)part * 1500 + i + 1, 100, 1};
            REQUIRE(lg->append(t).ok());
        }
        CHECK(lg->close().ok());
    }
    const uint8_t *both[2] = {k2, k1}, *only[1] = {k2};
    CHECK_EQ(plg::reader::open(dir.c_str(), only, 1).error(), PLG_EKEY);
    auto rd = plg::reader::open(dir.c_str(), both, 2);
    REQUIRE(rd.ok());
    Trade t;
    uint64_t seq = 0, n = 0, bad = 0;
    for (;;) {
        auto r = rd->next(t, &seq);
        REQUIRE(r.ok());
        if (!r.value()) break;
        n++;
        if (t.id != seq) bad++;
    }
    CHECK_EQ(n, 3000);
    CHECK_EQ(bad, 0);
}

static void test_log_errors_are_values_and_destructor_releases_the_lock() {
    plg_config cfg;
    std::memset(&cfg, 0, sizeof cfg);                   // no path
    auto lg = plg::log::open(cfg);
    CHECK(!lg);
    CHECK_EQ(lg.error(), PLG_EINVAL);
    CHECK(std::strstr(lg.message(), "PLG_EINVAL") != nullptr);
    std::string dir = std::string(t_dir("cxx_lock")) + "/log";
    {
        auto a = plg::log::open(dir.c_str());
        REQUIRE(a.ok());
        auto b = plg::log::open(dir.c_str());           // second writer
        CHECK_EQ(b.error(), PLG_ELOCKED);
        plg::log moved = std::move(a.value());          // ownership moves, once
        CHECK(!a.value());
        CHECK(moved.get() != nullptr);
        CHECK(moved.append("x", 1).ok());
    }                                                   // destructor closes
    auto c = plg::log::open(dir.c_str());
    CHECK(c.ok());
    CHECK_EQ(c->appended(), 1);
}

static void test_store_books_orders_and_errors() {
    std::string dir = t_dir("cxx_store");
    pp_config cfg{};
    cfg.data_dir = dir.c_str();
    cfg.flags = PP_NO_AUTO_SNAPSHOT | PP_NO_AUTO_COMPACT;
    cfg.expected_orders = 1024;
    cfg.ring_entries = 1024;
    cfg.journal_chunk_bytes = 1 << 20;
    {
        auto st = pp::store::open(cfg);
        REQUIRE(st.ok());
        auto again = pp::store::open(cfg);
        CHECK_EQ(again.error(), PP_ELOCKED);
        auto b = st->book("BTC-USD");
        REQUIRE(b.ok());
        pp_order o{};
        o.id = 7; o.price = 6500000; o.qty = 10; o.side = PP_BUY;
        CHECK(b->add(o).ok());
        o.id = 8; o.price = 6500100;
        CHECK(b->add(o).ok());
        auto over = b->execute(7, 11, 6500000);
        CHECK_EQ(over.error(), PP_EOVERFILL);
        CHECK(std::strstr(over.message(), "PP_EOVERFILL") != nullptr);
        CHECK(b->execute(7, 4, 6500000).ok());
        CHECK_EQ(b->last_seq(), 3);
        std::vector<uint64_t> ids;
        CHECK(b->orders([&](const pp_order &ord) { ids.push_back(ord.id); }).ok());
        CHECK_EQ(ids.size(), 2);
        int seen = 0;                                   // a visitor that returns nonzero stops
        b->orders([&](const pp_order &) { return ++seen == 1 ? 1 : 0; });
        CHECK_EQ(seen, 1);
        auto f = b->find(7);
        CHECK(f.ok() && f->qty == 6);
        CHECK_EQ(b->find(99).error(), PP_ENOENT);
        CHECK(b->sync().ok());
        CHECK(b->durable() >= 3);
        CHECK_EQ(st->book("../x").error(), PP_ENAME);
    }                                                   // destructor closes the store
    auto st = pp::store::open(cfg);
    REQUIRE(st.ok());
    auto b = st->book("BTC-USD");
    REQUIRE(b.ok());
    CHECK_EQ(b->order_count(), 2);
    CHECK_EQ(b->last_seq(), 3);
    CHECK(st->close().ok());
}

static void test_vault_handle() {
    std::string path = std::string(t_dir("cxx_vault")) + "/secure_config.json";
    vault_options opts{};
    opts.iterations = 1000; opts.min_iterations = 1000;
    {
        auto v = vlt::handle::create(path.c_str(), "pw", &opts);
        REQUIRE(v.ok());
        CHECK(v->set("api_key", "k-123").ok());
        CHECK(v->save().ok());
        CHECK_EQ(vlt::handle::create(path.c_str(), "pw", &opts).error(), VAULT_EEXIST);
    }
    auto bad = vlt::handle::open(path.c_str(), "wrong", &opts);
    CHECK_EQ(bad.error(), VAULT_EAUTH);
    CHECK(std::strstr(bad.message(), "VAULT_EAUTH") != nullptr);
    auto v = vlt::handle::open(path.c_str(), "pw", &opts);
    REQUIRE(v.ok());
    char buf[64];
    auto n = v->get("api_key", buf);
    CHECK(n.ok() && n.value() == 5 && std::strcmp(buf, "k-123") == 0);
    CHECK_EQ(v->get("nope", buf).error(), VAULT_ENOTFOUND);
    CHECK_EQ(v->count(), 1);
    uint8_t k1[VAULT_DATA_KEY_LEN], k2[VAULT_DATA_KEY_LEN];   // data keys: made, saved, read back
    CHECK_EQ(v->data_key("trades", k1).error(), VAULT_ENOTFOUND);
    REQUIRE(v->create_data_key("trades", k1).ok());
    CHECK_EQ(v->create_data_key("trades", k2).error(), VAULT_EEXIST);
    CHECK_EQ(v->data_key("api_key", k2).error(), VAULT_ENOTFOUND);   // a credential is not a key
    auto v2 = vlt::handle::open(path.c_str(), "pw", &opts);
    REQUIRE(v2.ok());
    REQUIRE(v2->data_key("trades", k2).ok());
    CHECK(std::memcmp(k1, k2, sizeof k1) == 0);
    vault_wipe(k1, sizeof k1); vault_wipe(k2, sizeof k2);
}

// pp::result is picolog's one result template with pinnacle's messages: the
// same members, a distinct type per header, each header's own strerror.
static_assert(std::is_same<pp::result<int>, plg::basic_result<int, pp::pp_errors>>::value, "pp::result reuses plg::basic_result");
static_assert(!std::is_same<pp::result<int>, plg::result<int>>::value, "one result type per header");
static int code_of(const plg::result<void> &r) { return r.error(); }   // overloads stay possible
static int code_of(const pp::result<void> &r) { return -r.error(); }

static void test_one_result_template_each_header_its_messages() {
    pp::result<void> p = pp::result<void>::failure(PP_ENOENT);
    plg::result<void> l = plg::result<void>::failure(PLG_ENOENT);
    CHECK(std::strstr(p.message(), "PP_ENOENT") != nullptr);
    CHECK(std::strstr(l.message(), "PLG_ENOENT") != nullptr);
    CHECK_EQ(code_of(p), -PP_ENOENT);
    CHECK_EQ(code_of(l), PLG_ENOENT);
    pp::result<uint64_t> v(7);
    CHECK(v.ok());
    CHECK_EQ(v.value_or(0), 7);
    CHECK(pp::status(0).ok());
    CHECK_EQ(pp::status(PP_EIO).error(), PP_EIO);
}

static void test_versions() {
    CHECK_EQ(plg_version(), PICOLOG_VERSION);
    CHECK_EQ(pp_version(), PP_VERSION);
    CHECK_EQ(vault_version(), VAULT_VERSION);
}

int main() {
    (void)&t_rand;                                     // t.h helper this test does not need
    RUN(test_log_append_reserve_and_read_back_typed);
    RUN(test_log_errors_are_values_and_destructor_releases_the_lock);
    RUN(test_reader_of_a_rotated_log_takes_its_keys);
    RUN(test_store_books_orders_and_errors);
    RUN(test_vault_handle);
    RUN(test_one_result_template_each_header_its_messages);
    RUN(test_versions);
    return t_done();
}
