"""PromQL lexer, following the states of Prometheus 2.42's `promql/parser/lex.go`.

The lexer is modal like Prometheus': inside `{...}` keywords are plain identifiers, inside `[...]` only
durations and `:` are allowed. Tokens are `(type, value, pos)` tuples; `pos` is a byte offset into the UTF-8
input (Prometheus reports byte columns). A lexing error does not raise: it ends the token stream with an
ERROR token so that, as in Prometheus, an earlier syntax error is still reported first.
"""
from __future__ import annotations

import re

# Token types. Operators, aggregators and keywords use their own names so the parser can switch on them.
EOF, ERROR, COMMENT = "EOF", "ERROR", "COMMENT"
IDENTIFIER, METRIC_IDENTIFIER = "IDENTIFIER", "METRIC_IDENTIFIER"
NUMBER, DURATION, STRING = "NUMBER", "DURATION", "STRING"
LEFT_PAREN, RIGHT_PAREN, LEFT_BRACE, RIGHT_BRACE = "(", ")", "{", "}"
LEFT_BRACKET, RIGHT_BRACKET, COMMA, COLON, EQL = "[", "]", ",", ":", "="

OPERATORS = {
    "+": "ADD", "-": "SUB", "*": "MUL", "/": "DIV", "%": "MOD", "^": "POW",
    "==": "EQLC", "!=": "NEQ", "<": "LSS", "<=": "LTE", ">": "GTR", ">=": "GTE",
    "=~": "EQL_REGEX", "!~": "NEQ_REGEX", "@": "AT",
    "and": "LAND", "or": "LOR", "unless": "LUNLESS", "atan2": "ATAN2",
}
AGGREGATORS = ("sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
               "count_values", "quantile")
KEYWORDS = ("offset", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "start", "end")

# Lower-cased word -> token type (keywords are case-insensitive in PromQL; the token keeps the user's text).
_KEY = {w: OPERATORS[w] for w in ("and", "or", "unless", "atan2")}
_KEY.update({w: w.upper() for w in AGGREGATORS})
_KEY.update({w: w.upper() for w in KEYWORDS})
_KEY["inf"] = NUMBER
_KEY["nan"] = NUMBER

OPERATOR_TYPES = frozenset(OPERATORS.values())
AGGREGATOR_TYPES = frozenset(w.upper() for w in AGGREGATORS)
KEYWORD_TYPES = frozenset(w.upper() for w in KEYWORDS)
# Types whose text is fixed (Prometheus' ItemTypeStr); they are described without a type prefix.
_FIXED = OPERATOR_TYPES | AGGREGATOR_TYPES | KEYWORD_TYPES | {
    LEFT_PAREN, RIGHT_PAREN, LEFT_BRACE, RIGHT_BRACE, LEFT_BRACKET, RIGHT_BRACKET, COMMA, COLON, EQL}
_TYPE_DESC = {EOF: "end of input", ERROR: "error", COMMENT: "comment", IDENTIFIER: "identifier",
              METRIC_IDENTIFIER: "metric identifier", STRING: "string", NUMBER: "number",
              DURATION: "duration"}

_SPACE = " \t\n\r"
_WORD_RE = re.compile(r"[a-zA-Z0-9_:]*")
_IDENT_RE = re.compile(r"[a-zA-Z0-9_]*")
_SPACES_RE = re.compile(r"[ \t\n\r]*")
_DEC_RE = re.compile(r"[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")
_HEX_RE = re.compile(r"0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[eE][+-]?[0-9]*)?")
# Plain string bodies up to the next quote, backslash or newline, scanned in one step.
_STR_BODY = {'"': re.compile(r'[^"\\\n]*'), "'": re.compile(r"[^'\\\n]*")}


def _alnum(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def _alpha(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def go_quote_rune(c: str) -> str:
    """Go's %q of a rune, used in lexer messages (e.g. `'~'`)."""
    if c == "":
        return "'\ufffd'"  # Go quotes the eof rune (-1) as the (printable) replacement character
    if c == "'":
        return "'\\''"
    if c == "\\":
        return "'\\\\'"
    esc = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    if c in esc:
        return f"'{esc[c]}'"
    o = ord(c)
    if o < 0x20 or o == 0x7F:
        return f"'\\x{o:02x}'"
    if not c.isprintable():
        return f"'\\u{o:04x}'" if o < 0x10000 else f"'\\U{o:08x}'"
    return f"'{c}'"


def go_quote(s: str) -> str:
    """Go's strconv.Quote (also `%q` of a string)."""
    out = ['"']
    esc = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
           "\t": "\\t", "\v": "\\v"}
    for c in s:
        if c in esc:
            out.append(esc[c])
            continue
        o = ord(c)
        if o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif c.isprintable() or c == " ":
            out.append(c)
        elif 0xD800 <= o < 0xE000:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _go_unicode_desc(c: str) -> str:
    """Go's %#U of a rune: `U+0071 'q'`."""
    if c == "":
        return "U+FFFFFFFFFFFFFFFF"  # eof is handled before this is used
    o = ord(c)
    text = f"U+{o:04X}"
    return f"{text} '{c}'" if c.isprintable() else text


def describe(tok) -> str:
    """Prometheus' Item.desc(): how a token is named in `unexpected ...` messages."""
    typ, val, _ = tok
    if typ == EOF:
        return "end of input"
    if typ in _FIXED:
        if typ == "AT":
            # 2.42 has no fixed text for `@`, so Prometheus prints the raw type number before the value.
            return '"<Item 57385>" <op:@>'
        if typ in ("START", "END"):
            return go_quote(val)    # preprocessors, not keywords, in 2.42's item classes
        if typ in KEYWORD_TYPES:
            return f"<{val}>"
        if typ in OPERATOR_TYPES:
            return f"<op:{val}>"
        if typ in AGGREGATOR_TYPES:
            return f"<aggr:{val}>"
        return go_quote(val)
    if typ in (IDENTIFIER, METRIC_IDENTIFIER):
        text = go_quote(val)
    elif len(val.encode()) > 10:
        text = go_quote(val[:10]) + "..."  # Go's %.10q truncates to 10 runes
    else:
        text = go_quote(val)
    return f"{_TYPE_DESC.get(typ, typ)} {text}"


class _Lexer:
    __slots__ = ("src", "pos", "toks", "paren", "bracket", "colon", "byte_pos")

    def __init__(self, src: str):
        self.src = src
        self.toks = []
        self.paren = 0
        self.bracket = False
        self.colon = False
        # Positions are reported in bytes; for ASCII input (the usual case) they equal str indexes.
        self.byte_pos = None if src.isascii() else _byte_offsets(src)

    def bpos(self, i: int) -> int:
        return i if self.byte_pos is None else self.byte_pos[i]

    def emit(self, typ, start, end):
        self.toks.append((typ, self.src[start:end], self.bpos(start)))

    def error(self, msg, start):
        self.toks.append((ERROR, msg, self.bpos(start)))

    def run(self) -> list:
        src, n = self.src, len(self.src)
        i = 0
        while True:
            if i >= n:
                if self.paren:
                    self.error("unclosed left parenthesis", n)
                elif self.bracket:
                    self.error("unclosed left bracket", n)
                else:
                    self.toks.append((EOF, "", self.bpos(n)))
                return self.toks
            c = src[i]
            if c in _SPACE:
                i = _SPACES_RE.match(src, i).end()
                continue
            if c == "#":
                j = i
                while j < n and src[j] not in "\r\n":
                    j += 1
                i = j  # comments are dropped here; the parser never sees them
                continue
            if c in "+-*/%^,@":
                typ = COMMA if c == "," else OPERATORS[c]
                self.emit(typ, i, i + 1)
                i += 1
            elif c == "=":
                nxt = src[i + 1:i + 2]
                if nxt == "=":
                    self.emit("EQLC", i, i + 2)
                    i += 2
                elif nxt == "~":
                    self.error(f"unexpected character after '=': {go_quote_rune(nxt)}", i)
                    return self.toks
                else:
                    self.emit(EQL, i, i + 1)
                    i += 1
            elif c == "!":
                nxt = src[i + 1:i + 2]
                if nxt != "=":
                    self.error(f"unexpected character after '!': {go_quote_rune(nxt)}", i)
                    return self.toks
                self.emit("NEQ", i, i + 2)
                i += 2
            elif c in "<>":
                if src[i + 1:i + 2] == "=":
                    self.emit("LTE" if c == "<" else "GTE", i, i + 2)
                    i += 2
                else:
                    self.emit("LSS" if c == "<" else "GTR", i, i + 1)
                    i += 1
            elif ("0" <= c <= "9") or (c == "." and i + 1 < n and "0" <= src[i + 1] <= "9"):
                i = self.number_or_duration(i)
                if i < 0:
                    return self.toks
            elif c in "\"'`":
                i = self.string(i)
                if i < 0:
                    return self.toks
            elif _alpha(c) or c == ":":
                if not self.bracket:
                    j = _WORD_RE.match(src, i).end()
                    word = src[i:j]
                    typ = _KEY.get(word.lower())
                    if typ is None:
                        typ = METRIC_IDENTIFIER if ":" in word else IDENTIFIER
                    self.emit(typ, i, j)
                    i = j
                else:
                    # Inside brackets Prometheus 2.42 turns any letter or colon into the subquery colon.
                    if self.colon:
                        self.error(f"unexpected colon {go_quote_rune(c)}", i)
                        return self.toks
                    self.emit(COLON, i, i + 1)
                    self.colon = True
                    i += 1
            elif c == "(":
                self.emit(LEFT_PAREN, i, i + 1)
                self.paren += 1
                i += 1
            elif c == ")":
                self.emit(RIGHT_PAREN, i, i + 1)
                self.paren -= 1
                i += 1
                if self.paren < 0:
                    # Prometheus overwrites the paren item with the error, positioned after it.
                    self.toks.pop()
                    self.error("unexpected right parenthesis ')'", i)
                    return self.toks
            elif c == "{":
                self.emit(LEFT_BRACE, i, i + 1)
                i = self.inside_braces(i + 1)
                if i < 0:
                    return self.toks
            elif c == "[":
                if self.bracket:
                    self.error("unexpected left bracket '['", i)
                    return self.toks
                self.colon = False
                self.emit(LEFT_BRACKET, i, i + 1)
                i = _SPACES_RE.match(src, i + 1).end()
                self.bracket = True
                i = self.duration(i)
                if i < 0:
                    return self.toks
            elif c == "]":
                if not self.bracket:
                    self.error("unexpected right bracket ']'", i)
                    return self.toks
                self.emit(RIGHT_BRACKET, i, i + 1)
                self.bracket = False
                i += 1
            else:
                self.error(f"unexpected character: {go_quote_rune(c)}", i)
                return self.toks

    def scan_number(self, i: int) -> tuple[bool, int]:
        """Prometheus 2.42 scanNumber: digits[.digits][e[+-]digits], then no alphanumeric may follow."""
        src = self.src
        m = _HEX_RE.match(src, i) if src.startswith(("0x", "0X"), i) else _DEC_RE.match(src, i)
        j = m.end()
        return (j >= len(src) or not _alnum(src[j])), j

    def number_or_duration(self, i: int) -> int:
        ok, j = self.scan_number(i)
        if ok:
            self.emit(NUMBER, i, j)
            return j
        ok, k = self.remaining_duration(j)
        if ok:
            self.emit(DURATION, i, k)
            return k
        self.error(f"bad number or duration syntax: {go_quote(self.src[i:k])}", i)
        return -1

    def remaining_duration(self, j: int) -> tuple[bool, int]:
        """acceptRemainingDuration: (is a duration, end of the token or of the consumed text on failure)."""
        src, n = self.src, len(self.src)
        if j >= n or src[j] not in "smhdwy":
            return False, j
        j += 1
        if j < n and src[j] == "s":
            j += 1
        while j < n and "0" <= src[j] <= "9":
            while j < n and "0" <= src[j] <= "9":
                j += 1
            if j >= n or src[j] not in "smhdw":
                return False, j
            j += 1
            if j < n and src[j] == "s":
                j += 1
        if j < n and _alnum(src[j]):
            return False, j + 1
        return True, j

    def duration(self, i: int) -> int:
        """Right after `[`: a duration is mandatory (2.42 lexDuration)."""
        ok, j = self.scan_number(i)
        if ok:
            self.error("missing unit character in duration", i)
            return -1
        ok, k = self.remaining_duration(j)
        if not ok:
            self.error(f"bad duration syntax: {go_quote(self.src[i:k])}", i)
            return -1
        self.emit(DURATION, i, k)
        return k

    def string(self, i: int) -> int:
        src, n = self.src, len(self.src)
        q = src[i]
        if q == "`":
            j = src.find("`", i + 1)
            if j < 0:
                self.error("unterminated raw string", i)
                return -1
            self.emit(STRING, i, j + 1)
            return j + 1
        body = _STR_BODY[q]
        j = i + 1
        while True:
            j = body.match(src, j).end()
            if j >= n or src[j] == "\n":
                self.error("unterminated quoted string", i)
                return -1
            c = src[j]
            if c == q:
                self.emit(STRING, i, j + 1)
                return j + 1
            # Backslash escape (Go rules, as Prometheus' lexEscape).
            j = self.escape(i, j + 1, q)
            if j < 0:
                return -1

    def escape(self, start: int, j: int, q: str) -> int:
        src, n = self.src, len(self.src)
        if j >= n:
            self.error("escape sequence not terminated", start)
            return -1
        c = src[j]
        if c in "abfnrtv\\" or c == q:
            return j + 1
        if "0" <= c <= "7":
            count, base, maxv = 3, 8, 255
        elif c in "xuU":
            count, base, maxv = {"x": 2, "u": 4, "U": 8}[c], 16, (255 if c == "x" else 0x10FFFF)
            j += 1
        else:
            self.error(f"unknown escape sequence {_go_unicode_desc(c)}", start)
            return -1
        x = 0
        for _ in range(count):
            if j >= n:
                self.error("escape sequence not terminated", start)
                return -1
            d = int(src[j], 16) if src[j] in "0123456789abcdefABCDEF" else 16
            if d >= base:
                self.error(f"illegal character {_go_unicode_desc(src[j])} in escape sequence", start)
                return -1
            x = x * base + d
            j += 1
        if x > maxv or 0xD800 <= x < 0xE000:
            self.error("escape sequence is an invalid Unicode code point", start)
            return -1
        return j

    def inside_braces(self, i: int) -> int:
        src, n = self.src, len(self.src)
        while True:
            if i >= n:
                self.error("unexpected end of input inside braces", i)
                return -1
            c = src[i]
            if c in _SPACE:
                i = _SPACES_RE.match(src, i).end()
            elif c == "#":
                while i < n and src[i] not in "\r\n":
                    i += 1
            elif _alpha(c):
                j = _IDENT_RE.match(src, i).end()
                self.emit(IDENTIFIER, i, j)
                i = j
            elif c == ",":
                self.emit(COMMA, i, i + 1)
                i += 1
            elif c in "\"'`":
                i = self.string(i)
                if i < 0:
                    return -1
            elif c == "=":
                if src[i + 1:i + 2] == "~":
                    self.emit("EQL_REGEX", i, i + 2)
                    i += 2
                else:
                    self.emit(EQL, i, i + 1)
                    i += 1
            elif c == "!":
                nxt = src[i + 1:i + 2]
                if nxt == "~":
                    self.emit("NEQ_REGEX", i, i + 2)
                elif nxt == "=":
                    self.emit("NEQ", i, i + 2)
                else:
                    self.error(f"unexpected character after '!' inside braces: {go_quote_rune(nxt)}", i)
                    return -1
                i += 2
            elif c == "{":
                self.error("unexpected left brace '{'", i)
                return -1
            elif c == "}":
                self.emit(RIGHT_BRACE, i, i + 1)
                return i + 1
            else:
                self.error(f"unexpected character inside braces: {go_quote_rune(c)}", i)
                return -1


def _byte_offsets(src: str) -> list:
    offs, total = [], 0
    for ch in src:
        offs.append(total)
        total += len(ch.encode("utf-8", "surrogatepass"))
    offs.append(total)
    return offs


def tokenize(src: str) -> list:
    """All tokens of `src`, ending with EOF or with an ERROR token."""
    return _Lexer(src).run()


def unquote(text: str) -> str:
    """Decode a lexed string token (quotes included) with Go's escape rules; the lexer validated it."""
    q = text[0]
    body = text[1:-1]
    if q == "`" or "\\" not in body:
        return body
    out = bytearray()
    i, n = 0, len(body)
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}
    while i < n:
        c = body[i]
        if c != "\\":
            j = body.find("\\", i)
            j = n if j < 0 else j
            out += body[i:j].encode("utf-8", "surrogatepass")
            i = j
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif "0" <= e <= "7":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif e == "x":
            out.append(int(body[i + 2:i + 4], 16))  # \x is a raw byte, as in Go
            i += 4
        else:
            width = 4 if e == "u" else 8
            out += chr(int(body[i + 2:i + 2 + width], 16)).encode("utf-8")
            i += 2 + width
    return out.decode("utf-8", "replace")
