# Every third-party library comes from Debian through pkg-config, as an imported target.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(AGX_CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(AGX_JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(AGX_UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(AGX_LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(AGX_SSL REQUIRED IMPORTED_TARGET openssl) # the client's TLS (runtime/transport/sio_tls.c)
pkg_check_modules(AGX_MSGPACK REQUIRED IMPORTED_TARGET msgpack)
