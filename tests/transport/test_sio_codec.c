/* test_sio_codec.c — unit tests of the transport codec (runtime/transport/sio_codec.c): every
 * Engine.IO and Socket.IO packet type, placeholders, the attachment state machine, and malformed
 * inputs, using the wire examples the official socket.io-parser produces and accepts. */
#include <string.h>

#include "check.h"
#include "runtime/transport/sio_codec.h"

static int decode(const char *s, agx_sio_packet *p, agx_error *err)
{
    return agx_sio_decode(s, strlen(s), p, err);
}

static void expect_bad(const char *s, int code)
{
    agx_sio_packet p;
    agx_error err;
    int rc = decode(s, &p, &err);
    CHECK_MSG(rc == code, "'%s' gave %d (%s), want %d", s, rc, rc ? err.message : "ok", code);
    CHECK(p.data == NULL);
}

static void test_eio(void)
{
    agx_eio_type t;
    const char *pl;
    size_t n;
    agx_error err;
    for (char c = '0'; c <= '6'; c++) {
        char f[3] = {c, 'x', 0};
        CHECK_OK(agx_eio_decode(f, 2, &t, &pl, &n, &err), &err);
        CHECK((int)t == c - '0');
        CHECK(n == 1 && pl[0] == 'x');
    }
    CHECK(agx_eio_decode("", 0, &t, &pl, &n, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_eio_decode("7", 1, &t, &pl, &n, &err) == AGX_ERR_PROTOCOL);
    CHECK(agx_eio_decode("\xff", 1, &t, &pl, &n, &err) == AGX_ERR_PROTOCOL);
}

static void test_open(void)
{
    agx_eio_open o = {.sid = "abcDEF_-123", .ping_interval_ms = 300, .ping_timeout_ms = 200,
                      .max_payload = 1000000};
    char buf[256];
    size_t n;
    agx_error err;
    CHECK_OK(agx_eio_encode_open(buf, sizeof buf, &o, &n, &err), &err);
    CHECK_STREQ(buf, "0{\"sid\":\"abcDEF_-123\",\"upgrades\":[],\"pingInterval\":300,"
                     "\"pingTimeout\":200,\"maxPayload\":1000000}");
    CHECK(n == strlen(buf));
    agx_eio_open back;
    CHECK_OK(agx_eio_parse_open(buf + 1, n - 1, &back, &err), &err);
    CHECK_STREQ(back.sid, o.sid);
    CHECK(back.ping_interval_ms == 300 && back.ping_timeout_ms == 200);
    CHECK(back.max_payload == 1000000);
    CHECK(agx_eio_encode_open(buf, 20, &o, &n, &err) == AGX_ERR_LIMIT);
    agx_eio_open badsid = o;
    strcpy(badsid.sid, "a\"b");
    CHECK(agx_eio_encode_open(buf, sizeof buf, &badsid, &n, &err) == AGX_ERR_INVALID_ARGUMENT);

    const char *bad[] = {
        "",
        "[]",
        "{\"pingInterval\":1,\"pingTimeout\":1}",
        "{\"sid\":\"\",\"pingInterval\":1,\"pingTimeout\":1}",
        "{\"sid\":\"x\",\"pingTimeout\":1}",
        "{\"sid\":\"x\",\"pingInterval\":0,\"pingTimeout\":1}",
        "{\"sid\":\"x\",\"pingInterval\":-5,\"pingTimeout\":1}",
        "{\"sid\":\"x\",\"pingInterval\":1.5,\"pingTimeout\":1}",
        "{\"sid\":\"x\",\"pingInterval\":1,\"pingTimeout\":1,\"maxPayload\":\"big\"}",
        "{\"sid\":\"x y\",\"pingInterval\":1,\"pingTimeout\":1}",
        ("{\"sid\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"pingInterval\":1,\"pingTimeout\":1}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(agx_eio_parse_open(bad[i], strlen(bad[i]), &back, &err) == AGX_ERR_PROTOCOL,
                  "open '%s' accepted", bad[i]);
    const char *node = "{\"sid\":\"yeQOowD2HagcKUiSAAAA\",\"upgrades\":[],\"pingInterval\":25000,"
                       "\"pingTimeout\":20000,\"maxPayload\":1000000}";
    CHECK_OK(agx_eio_parse_open(node, strlen(node), &back, &err), &err);
    CHECK(back.ping_interval_ms == 25000);
}

static void test_sio_types(void)
{
    agx_sio_packet p;
    agx_error err;

    CHECK_OK(decode("0", &p, &err), &err);
    CHECK(p.type == AGX_SIO_CONNECT && !p.data && strcmp(p.nsp, "/") == 0);
    CHECK_OK(decode("0{\"token\":\"x\"}", &p, &err), &err);
    CHECK_STREQ(json_string_value(json_object_get(p.data, "token")), "x");
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("0/admin,", &p, &err), &err);
    CHECK_STREQ(p.nsp, "/admin");
    CHECK_OK(decode("0/random", &p, &err), &err);
    CHECK_STREQ(p.nsp, "/random");
    CHECK_OK(decode("0/admin,{\"sid\":\"abc\"}", &p, &err), &err);
    CHECK_STREQ(p.nsp, "/admin");
    agx_sio_packet_clear(&p);

    CHECK_OK(decode("1", &p, &err), &err);
    CHECK(p.type == AGX_SIO_DISCONNECT);
    CHECK_OK(decode("1/admin,", &p, &err), &err);

    CHECK_OK(decode("2[\"evt\",1]", &p, &err), &err);
    CHECK(p.type == AGX_SIO_EVENT && p.ack_id == AGX_SIO_NO_ACK);
    CHECK_STREQ(p.event, "evt");
    CHECK(json_array_size(p.data) == 2);
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("28[\"rpc2\",21]", &p, &err), &err);
    CHECK(p.ack_id == 8);
    CHECK_STREQ(p.event, "rpc2");
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("2/admin,12[\"e\"]", &p, &err), &err);
    CHECK(p.ack_id == 12);
    CHECK_STREQ(p.nsp, "/admin");
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("2[7,\"x\"]", &p, &err), &err);
    CHECK_STREQ(p.event, "7");
    agx_sio_packet_clear(&p);

    CHECK_OK(decode("38[42]", &p, &err), &err);
    CHECK(p.type == AGX_SIO_ACK && p.ack_id == 8);
    CHECK(json_integer_value(json_array_get(p.data, 0)) == 42);
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("30[]", &p, &err), &err);
    CHECK(p.ack_id == 0 && json_array_size(p.data) == 0);
    agx_sio_packet_clear(&p);

    CHECK_OK(decode("4{\"message\":\"Invalid namespace\"}", &p, &err), &err);
    CHECK(p.type == AGX_SIO_CONNECT_ERROR);
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("4/nope,{\"message\":\"Invalid namespace\"}", &p, &err), &err);
    CHECK_STREQ(p.nsp, "/nope");
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("4\"plain\"", &p, &err), &err);
    agx_sio_packet_clear(&p);

    CHECK_OK(decode("51-7[\"rpc\",{\"a\":1},{\"_placeholder\":true,\"num\":0}]", &p, &err), &err);
    CHECK(p.type == AGX_SIO_BINARY_EVENT && p.nattach == 1 && p.ack_id == 7);
    CHECK_STREQ(p.event, "rpc");
    CHECK(agx_sio_placeholder_index(json_array_get(p.data, 2)) == 0);
    CHECK(agx_sio_placeholder_index(json_array_get(p.data, 1)) == -1);
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("61-7[\"ret\",{\"_placeholder\":true,\"num\":0}]", &p, &err), &err);
    CHECK(p.type == AGX_SIO_BINARY_ACK && p.nattach == 1 && p.ack_id == 7);
    agx_sio_packet_clear(&p);
    /* placeholders deep in the tree, several attachments */
    CHECK_OK(decode("52-[\"x\",{\"k\":[{\"_placeholder\":true,\"num\":1}]},"
                    "{\"_placeholder\":true,\"num\":0}]",
                    &p, &err),
             &err);
    CHECK(p.nattach == 2);
    agx_sio_packet_clear(&p);
    CHECK_OK(decode("510-[\"ten\"]", &p, &err), &err);
    CHECK(p.nattach == 10);
    agx_sio_packet_clear(&p);
}

static void test_sio_malformed(void)
{
    expect_bad("", AGX_ERR_PROTOCOL);
    expect_bad("abc", AGX_ERR_PROTOCOL);
    expect_bad("7", AGX_ERR_PROTOCOL);
    expect_bad("2", AGX_ERR_PROTOCOL);            /* event without payload */
    expect_bad("2{}", AGX_ERR_PROTOCOL);          /* `42{}` on the wire */
    expect_bad("2abc", AGX_ERR_PROTOCOL);
    expect_bad("2[]", AGX_ERR_PROTOCOL);
    expect_bad("2[{}]", AGX_ERR_PROTOCOL);
    expect_bad("2[null]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"evt\"", AGX_ERR_PROTOCOL);
    expect_bad("2[\"evt\"] x", AGX_ERR_PROTOCOL);
    expect_bad("2[\"connect\"]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"connect_error\"]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"disconnect\"]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"disconnecting\"]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"newListener\"]", AGX_ERR_PROTOCOL);
    expect_bad("2[\"removeListener\"]", AGX_ERR_PROTOCOL);
    expect_bad("29007199254740992[\"e\"]", AGX_ERR_PROTOCOL); /* ack id past 2^53-1 */
    expect_bad("299999999999999999999999[\"e\"]", AGX_ERR_PROTOCOL);
    expect_bad("0[]", AGX_ERR_PROTOCOL);
    expect_bad("0\"tok\"", AGX_ERR_PROTOCOL);
    expect_bad("1{}", AGX_ERR_PROTOCOL);
    expect_bad("1[]", AGX_ERR_PROTOCOL);
    expect_bad("3[]", AGX_ERR_PROTOCOL);          /* ack without id */
    expect_bad("31{}", AGX_ERR_PROTOCOL);
    expect_bad("4", AGX_ERR_PROTOCOL);
    expect_bad("4[1]", AGX_ERR_PROTOCOL);
    expect_bad("5[\"x\"]", AGX_ERR_PROTOCOL);      /* no attachment count */
    expect_bad("5-[\"x\"]", AGX_ERR_PROTOCOL);
    expect_bad("51[\"x\"]", AGX_ERR_PROTOCOL);
    expect_bad("5a-[\"x\"]", AGX_ERR_PROTOCOL);
    expect_bad("511-[\"x\"]", AGX_ERR_LIMIT);      /* over the 10-attachment cap */
    expect_bad("599999999999999999999-[\"x\"]", AGX_ERR_LIMIT);
    expect_bad("51-[\"x\",{\"_placeholder\":true,\"num\":1}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"x\",{\"_placeholder\":true,\"num\":-1}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"x\",{\"_placeholder\":true,\"num\":\"0\"}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"x\",{\"_placeholder\":true}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"x\",{\"_placeholder\":true,\"num\":0.5}]", AGX_ERR_PROTOCOL);
    expect_bad("61-[{\"_placeholder\":true,\"num\":0}]", AGX_ERR_PROTOCOL); /* no ack id */
    expect_bad("0/a\x01,", AGX_ERR_PROTOCOL);
    expect_bad("2[\"\xff\"]", AGX_ERR_PROTOCOL);   /* invalid UTF-8 in JSON */
    expect_bad("2[\"a\\u0000b\"]", AGX_ERR_PROTOCOL);
    char longnsp[300] = "0/";
    memset(longnsp + 2, 'a', 200);
    expect_bad(longnsp, AGX_ERR_PROTOCOL);
    /* not placeholders in non-binary packets: plain objects */
    agx_sio_packet p;
    agx_error err;
    CHECK_OK(decode("2[\"x\",{\"_placeholder\":true,\"num\":5}]", &p, &err), &err);
    agx_sio_packet_clear(&p);
}

/* The common event ["<name>",{"_placeholder":true,"num":0}] is built without the parser: the
 * packet must equal what the parser makes of the same text, for every spelling near it too. */
static void expect_as_parsed(const char *s)
{
    agx_sio_packet p;
    agx_error err;
    CHECK_OK(decode(s, &p, &err), &err);
    const char *json = strchr(s, '[');
    json_t *want = json_loads(json, JSON_DECODE_ANY, NULL);
    CHECK_MSG(want && json_equal(p.data, want), "'%s' decoded differently from the parser", s);
    CHECK_STREQ(p.event, json_string_value(json_array_get(want, 0)));
    CHECK(p.type == AGX_SIO_BINARY_EVENT && p.nattach == 1);
    json_decref(want);
    agx_sio_packet_clear(&p);
}

static void test_plain_event(void)
{
    expect_as_parsed("51-[\"item\",{\"_placeholder\":true,\"num\":0}]");
    expect_as_parsed("51-[\"bidi:in\",{\"_placeholder\":true,\"num\":0}]");
    expect_as_parsed("51-/ns,7[\"a.b-c_D9\",{\"_placeholder\":true,\"num\":0}]");
    /* near misses take the parser and still decode the same */
    expect_as_parsed("51-[\"it\\u0065m\",{\"_placeholder\":true,\"num\":0}]");
    expect_as_parsed("51-[\"item\", {\"_placeholder\":true,\"num\":0}]");
    expect_as_parsed("51-[\"item\",{\"num\":0,\"_placeholder\":true}]");
    expect_as_parsed("51-[\"it em\",{\"_placeholder\":true,\"num\":0}]");
    char longname[160] = "51-[\"";
    memset(longname + 5, 'n', 100);
    strcat(longname, "\",{\"_placeholder\":true,\"num\":0}]");
    expect_as_parsed(longname);
    /* its checks are the parser's */
    expect_bad("51-[\"connect\",{\"_placeholder\":true,\"num\":0}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"disconnect\",{\"_placeholder\":true,\"num\":0}]", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"\",{\"_placeholder\":true,\"num\":0}]x", AGX_ERR_PROTOCOL);
    expect_bad("51-[\"item\",{\"_placeholder\":true,\"num\":0}]]", AGX_ERR_PROTOCOL);
    expect_bad("50-[\"item\",{\"_placeholder\":true,\"num\":0}]", AGX_ERR_PROTOCOL);
    /* the path is taken for exactly that text and no other */
    const char *item = "[\"item\",{\"_placeholder\":true,\"num\":0}]";
    json_t *built = agx_sio_plain_event(item, strlen(item));
    CHECK(built && json_array_size(built) == 2);
    json_decref(built);
    const char *near[] = {"[\"it em\",{\"_placeholder\":true,\"num\":0}]",
                          "[\"item\", {\"_placeholder\":true,\"num\":0}]",
                          "[\"item\",{\"_placeholder\":true,\"num\":1}]",
                          "[\"\",{\"_placeholder\":true,\"num\":0}]", "[\"item\"]"};
    for (size_t i = 0; i < sizeof near / sizeof *near; i++)
        CHECK_MSG(!agx_sio_plain_event(near[i], strlen(near[i])), "'%s' was built", near[i]);
    /* many packets, each freed */
    for (int i = 0; i < 1000; i++)
        expect_as_parsed("51-[\"item\",{\"_placeholder\":true,\"num\":0}]");
}

static void test_encode(void)
{
    char buf[512];
    size_t n, need;
    agx_error err;
    CHECK_OK(agx_sio_encode_event(buf, sizeof buf, NULL, "rpc", NULL, 1, 7, &n, &err), &err);
    CHECK_STREQ(buf, "451-7[\"rpc\",{\"_placeholder\":true,\"num\":0}]");
    CHECK(n == strlen(buf));
    CHECK_OK(agx_sio_encode_event(NULL, 0, NULL, "rpc", NULL, 1, 7, &need, &err), &err);
    CHECK(need == n);
    CHECK(agx_sio_encode_event(buf, 5, NULL, "rpc", NULL, 1, 7, &need, &err) == AGX_ERR_LIMIT);
    CHECK(need == n);
    CHECK_OK(agx_sio_encode_event(buf, sizeof buf, "/", "evt", NULL, 0, AGX_SIO_NO_ACK, &n, &err),
             &err);
    CHECK_STREQ(buf, "42[\"evt\"]");
    json_t *args = json_pack("[i,{s:b}]", 1, "k", 1);
    CHECK_OK(agx_sio_encode_event(buf, sizeof buf, "/admin", "e", args, 0, 3, &n, &err), &err);
    CHECK_STREQ(buf, "42/admin,3[\"e\",1,{\"k\":true}]");
    CHECK_OK(agx_sio_encode_ack(buf, sizeof buf, NULL, 8, args, 1, &n, &err), &err);
    CHECK_STREQ(buf, "461-8[1,{\"k\":true},{\"_placeholder\":true,\"num\":0}]");
    CHECK_OK(agx_sio_encode_ack(buf, sizeof buf, NULL, 8, NULL, 0, &n, &err), &err);
    CHECK_STREQ(buf, "438[]");
    CHECK_OK(agx_sio_encode_ack(buf, sizeof buf, NULL, 0, NULL, 1, &n, &err), &err);
    CHECK_STREQ(buf, "461-0[{\"_placeholder\":true,\"num\":0}]");
    CHECK(agx_sio_encode_ack(buf, sizeof buf, NULL, AGX_SIO_NO_ACK, NULL, 0, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode_event(buf, sizeof buf, NULL, "disconnect", NULL, 0, -1, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode_event(buf, sizeof buf, NULL, "", NULL, 0, -1, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode_event(buf, sizeof buf, NULL, "\xc3\x28", NULL, 0, -1, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode_event(buf, sizeof buf, "bad", "e", NULL, 0, -1, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    json_t *notarr = json_object();
    CHECK(agx_sio_encode_event(buf, sizeof buf, NULL, "e", notarr, 0, -1, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    json_decref(notarr);

    /* escaping survives a round trip through the decoder */
    const char *odd = "a\"b\\c\n\x01/é";
    CHECK_OK(agx_sio_encode_event(buf, sizeof buf, NULL, odd, args, 0, 5, &n, &err), &err);
    agx_sio_packet p;
    CHECK_OK(agx_sio_decode(buf + 1, n - 1, &p, &err), &err);
    CHECK_STREQ(p.event, odd);
    CHECK(p.ack_id == 5 && json_array_size(p.data) == 3);
    agx_sio_packet_clear(&p);

    json_t *auth = json_pack("{s:s}", "token", "t");
    CHECK_OK(agx_sio_encode(buf, sizeof buf, AGX_SIO_CONNECT, NULL, AGX_SIO_NO_ACK, 0, auth, &n,
                            &err),
             &err);
    CHECK_STREQ(buf, "40{\"token\":\"t\"}");
    CHECK_OK(agx_sio_encode(buf, sizeof buf, AGX_SIO_DISCONNECT, "/", AGX_SIO_NO_ACK, 0, NULL, &n,
                            &err),
             &err);
    CHECK_STREQ(buf, "41");
    CHECK_OK(agx_sio_encode(buf, sizeof buf, AGX_SIO_BINARY_EVENT, "/x", 2, 3, args, &n, &err),
             &err);
    CHECK_STREQ(buf, "453-/x,2[1,{\"k\":true}]");
    CHECK(agx_sio_encode(buf, sizeof buf, AGX_SIO_EVENT, NULL, -1, 1, NULL, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode(buf, sizeof buf, AGX_SIO_BINARY_EVENT, NULL, -1, 11, NULL, &n, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(agx_sio_encode(buf, sizeof buf, AGX_SIO_EVENT, NULL, AGX_SIO_ACK_ID_MAX + 1, 0, NULL, &n,
                         &err) == AGX_ERR_INVALID_ARGUMENT);
    json_decref(auth);
    json_decref(args);
}

static void test_decoder(void)
{
    agx_sio_decoder d;
    agx_error err;
    const uint8_t a0[] = {5, 6, 7}, a1[] = {9};
    agx_sio_decoder_init(&d, 1024);

    /* two attachments: the first is copied, the last is borrowed from the caller */
    const char *hdr = "52-3[\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
    CHECK(agx_sio_decoder_text(&d, hdr, strlen(hdr), &err) == 0);
    CHECK(d.state == AGX_SIO_DEC_ATTACHMENTS);
    CHECK(agx_sio_decoder_binary(&d, a0, sizeof a0, &err) == 0);
    CHECK(agx_sio_decoder_binary(&d, a1, sizeof a1, &err) == 1);
    CHECK(d.pkt.attach[0].len == 3 && memcmp(d.pkt.attach[0].data, a0, 3) == 0);
    CHECK(d.pkt.attach[0].data != a0);
    CHECK(d.pkt.attach[1].data == a1 && d.pkt.attach[1].len == 1);
    CHECK(d.pkt.ack_id == 3);

    /* a plain packet after a delivered one */
    CHECK(agx_sio_decoder_text(&d, "2[\"e\"]", 6, &err) == 1);
    CHECK_STREQ(d.pkt.event, "e");
    /* zero attachments completes at once; an empty attachment is fine */
    CHECK(agx_sio_decoder_text(&d, "50-[\"z\"]", 8, &err) == 1);
    const char *one = "51-[\"o\",{\"_placeholder\":true,\"num\":0}]";
    CHECK(agx_sio_decoder_text(&d, one, strlen(one), &err) == 0);
    CHECK(agx_sio_decoder_binary(&d, a0, 0, &err) == 1);
    CHECK(d.pkt.attach[0].len == 0);

    /* binary frame without a header */
    CHECK(agx_sio_decoder_binary(&d, a0, 3, &err) == AGX_ERR_PROTOCOL);
    CHECK(d.state == AGX_SIO_DEC_FAILED);
    CHECK(agx_sio_decoder_text(&d, "2[\"e\"]", 6, &err) == AGX_ERR_PROTOCOL); /* stays failed */
    agx_sio_decoder_dispose(&d);

    /* text while attachments are pending */
    agx_sio_decoder_init(&d, 1024);
    CHECK(agx_sio_decoder_text(&d, hdr, strlen(hdr), &err) == 0);
    CHECK(agx_sio_decoder_binary(&d, a0, 3, &err) == 0);
    CHECK(agx_sio_decoder_text(&d, "2[\"e\"]", 6, &err) == AGX_ERR_PROTOCOL);
    CHECK(d.state == AGX_SIO_DEC_FAILED);
    agx_sio_decoder_dispose(&d);

    /* held bytes are bounded */
    agx_sio_decoder_init(&d, 2);
    CHECK(agx_sio_decoder_text(&d, hdr, strlen(hdr), &err) == 0);
    CHECK(agx_sio_decoder_binary(&d, a0, 3, &err) == AGX_ERR_LIMIT);
    agx_sio_decoder_dispose(&d);

    /* malformed text fails the decoder */
    agx_sio_decoder_init(&d, 16);
    CHECK(agx_sio_decoder_text(&d, "2{}", 3, &err) == AGX_ERR_PROTOCOL);
    CHECK(d.state == AGX_SIO_DEC_FAILED);
    agx_sio_decoder_dispose(&d);

    /* dispose with an incomplete packet frees the copies */
    agx_sio_decoder_init(&d, 1024);
    CHECK(agx_sio_decoder_text(&d, hdr, strlen(hdr), &err) == 0);
    CHECK(agx_sio_decoder_binary(&d, a0, 3, &err) == 0);
    agx_sio_decoder_dispose(&d);
}

int main(void)
{
    TEST_RUN(test_eio);
    TEST_RUN(test_open);
    TEST_RUN(test_sio_types);
    TEST_RUN(test_sio_malformed);
    TEST_RUN(test_plain_event);
    TEST_RUN(test_encode);
    TEST_RUN(test_decoder);
    return 0;
}
