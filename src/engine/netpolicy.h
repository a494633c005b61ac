/*
 * netpolicy.h - where HTTP tasks may connect.
 *
 * Checked on the address of every connection an HTTP task opens (the one of
 * its url, each redirect's, a proxy's), after name resolution, before any
 * packet is sent: a connection is refused when the address matches a deny
 * rule and no allow rule. Denied by default: link-local networks
 * (169.254.0.0/16, where clouds serve instance credentials, and fe80::/10)
 * and the server's own API (its listen address and port: a task must not
 * call orch with the keys of a definition or its own addresses); plus the
 * rules of ORCH_HTTP_DENY. ORCH_HTTP_ALLOW lets through what a deny rule
 * would refuse. Loopback in general stays allowed (services next to orch).
 *
 * A rule list is comma-separated entries, each a network or an address with
 * an optional port: 10.0.0.0/8, 192.168.1.10, 127.0.0.1:8080, fd00::/8,
 * [::1]:8080 (brackets when an IPv6 address has a port). IPv4-mapped IPv6
 * addresses are checked as IPv4.
 */
#ifndef ORCH_ENGINE_NETPOLICY_H
#define ORCH_ENGINE_NETPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "base/err.h"

struct netpolicy;

/*
 * A policy: the defaults, then `deny` and `allow` (either may be NULL or
 * empty). ERR_INVALID naming the bad entry and `what` ("ORCH_HTTP_ALLOW")
 * of the list it is in.
 */
int netpolicy_new(const char *allow, const char *deny, struct netpolicy **out, struct err *err);
void netpolicy_free(struct netpolicy *np);

/*
 * Deny the server's own listener, given as "ADDR:PORT" or "[V6ADDR]:PORT"
 * (numeric). A wildcard address (0.0.0.0, ::) stands for every address of
 * the host at that port: loopback and each interface's.
 */
int netpolicy_deny_listener(struct netpolicy *np, const char *hostport, struct err *err);

/*
 * May a connection go to `sa`? 0 if so; -1 if refused, with `why` saying to
 * which address, why and how to allow it:
 * "refused to connect to 169.254.169.254:80: a link-local address (169.254.0.0/16)
 *  (to allow it: ORCH_HTTP_ALLOW=169.254.169.254)".
 */
int netpolicy_check(const struct netpolicy *np, const struct sockaddr *sa, char *why,
                    size_t whylen);

#endif
