// Package urlpath validates the raw, still percent-encoded path of an HTTP
// request before any router cleans or decodes it.
//
// Every format shares the same rules, checked once in front of the router
// (Go's ServeMux would otherwise answer ".." paths with a 307 redirect).
// Check refuses paths that are longer than 4096 bytes or do not start with
// "/", empty segments (a single trailing slash is allowed, it asks for a
// directory listing), invalid percent-encoding, and segments that are "." or
// "..", contain a control character (0x00-0x1f, 0x7f) or a backslash, or are
// not valid UTF-8 once decoded.
//
// Each segment is decoded repeatedly, as a careless downstream component
// might do: "%252e%252e" decodes to "%2e%2e" and then to "..", and is
// refused. The first decoding is strict: a '%' not followed by two hex
// digits is an error. Later decodings replace the valid escapes and keep any
// other '%' literally, so "100%25.txt" (a file named "100%.txt") is fine.
// Decoding stops when no valid escape is left; a segment still holding one
// after 4 decodings is refused. The "."/".."/control/backslash
// rules apply to every decoding stage; the UTF-8 rule only applies to the
// first one, which is the name the request actually asks for.
//
// A percent-encoded slash ("%2F", also "%252F") is not refused here: Check
// reports it so that the caller can refuse it unless a format claims it for
// a name (npm's "@scope%2fname"). The parts either side of such a slash must
// be non-empty and pass the same rules, so "a%2f..%2fb" is refused.
//
// A ';' has no meaning to arca, but servlet containers and some proxies cut
// a segment at ';' (a path parameter), so a segment whose part before the
// first ';' is "." or ".." ("..;", "..;jsessionid=1") is refused too: a proxy
// in front of arca could otherwise read it as "..".
package urlpath
