"""Shell syntax for launch scripts: tokens (words with their quoting, operators, array
assignments) and a small syntax tree (simple commands, and-or lists, pipelines, ``if``,
groups; loops, ``case`` and functions are kept as skipped parts). Evaluation is in
:mod:`estimator.importers.shell`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

from estimator.errors import InputError

#: a value that came from something not evaluated (command substitution, unsupported
#: expansion) contains this character
UNRESOLVED = "\x00"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_MAX_DEPTH = 64
_KEYWORDS_STOP = {"then", "elif", "else", "fi", "do", "done", "esac", "}"}


# ------------------------------------------------------------------------- tokens
@dataclass
class Word:
    parts: list  # ('lit'|'sq'|'dq', text) or ('exp', raw, quoted)
    line: int

    def literal(self) -> Optional[str]:
        """The text when the word has no expansion, else None."""
        if any(p[0] == "exp" for p in self.parts):
            return None
        return "".join(p[1] for p in self.parts)

    def plain(self) -> Optional[str]:
        """The text when the word is entirely unquoted literal (keywords), else None."""
        if len(self.parts) == 1 and self.parts[0][0] == "lit":
            return self.parts[0][1]
        return None


@dataclass
class Op:
    text: str
    line: int


@dataclass
class ArrayAssign:
    name: str
    append: bool
    words: list
    line: int


Token = Union[Word, Op, ArrayAssign]


class _Lexer:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.line = 1
        self.notes: list[str] = []

    def error(self, msg: str) -> InputError:
        return InputError(f"launch script line {self.line}: {msg}")

    def _match_close(self, start: int, open_: str, close: str) -> int:
        """Index just past the ``close`` matching the ``open_`` before ``start``; skips quotes."""
        depth, i, s = 1, start, self.s
        while i < len(s):
            ch = s[i]
            if ch == "\\":
                i += 2
                continue
            if ch == "'" and open_ != "{":
                j = s.find("'", i + 1)
                i = len(s) if j < 0 else j + 1
                continue
            if ch == '"':
                j = i + 1
                while j < len(s) and s[j] != '"':
                    j += 2 if s[j] == "\\" else 1
                i = j + 1
                continue
            if ch == "\n":
                self.line += 1
            if s.startswith(open_, i) and open_ != close:
                depth += 1
                i += len(open_)
                continue
            if s.startswith(close, i):
                depth -= 1
                if depth == 0:
                    return i + len(close)
                i += len(close)
                continue
            i += 1
        raise self.error(f"no closing '{close}'")

    def _dollar(self) -> Optional[str]:
        """Raw text of an expansion starting at '$' (self.i on '$'); None if a plain '$'."""
        s, i = self.s, self.i
        if s.startswith("$((", i):
            end = self._match_close(i + 3, "(", ")")
            if end < len(s) and s[end] == ")":
                end += 1
            else:
                raise self.error("no closing '))'")
        elif s.startswith("$(", i):
            end = self._match_close(i + 2, "(", ")")
        elif s.startswith("${", i):
            end = self._match_close(i + 2, "{", "}")
        else:
            m = _NAME.match(s, i + 1)
            if m:
                end = m.end()
            elif i + 1 < len(s) and (s[i + 1].isdigit() or s[i + 1] in "@*#?$!-"):
                end = i + 2
            else:
                return None
        raw = s[i:end]
        self.i = end
        return raw

    def _double_quoted(self, parts: list) -> None:
        s = self.s
        self.i += 1
        buf = []
        while True:
            if self.i >= len(s):
                raise self.error("unterminated double quote")
            ch = s[self.i]
            if ch == '"':
                self.i += 1
                break
            if ch == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] == "\n":
                    self.line += 1
                else:
                    buf.append(s[self.i + 1])
                self.i += 2
                continue
            if ch == "$":
                raw = self._dollar()
                if raw is not None:
                    if buf:
                        parts.append(("dq", "".join(buf)))
                        buf = []
                    parts.append(("exp", raw, True))
                    continue
            if ch == "`":
                end = s.find("`", self.i + 1)
                if end < 0:
                    raise self.error("unterminated backquote")
                if buf:
                    parts.append(("dq", "".join(buf)))
                    buf = []
                parts.append(("exp", s[self.i:end + 1], True))
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
                continue
            if ch == "\n":
                self.line += 1
            buf.append(ch)
            self.i += 1
        parts.append(("dq", "".join(buf)))

    def _heredoc(self) -> None:
        """Skip a here-document: after '<<[-]WORD', the body runs to a line equal to WORD."""
        s = self.s
        m = re.compile(r"-?[ \t]*(['\"]?)([A-Za-z0-9_]+)\1").match(s, self.i)
        if not m:
            return
        self.i = m.end()
        nl = s.find("\n", self.i)
        if nl < 0:
            return
        tag = m.group(2)
        body_start = nl + 1
        end = re.compile(rf"^[ \t]*{re.escape(tag)}[ \t]*$", re.M).search(s, body_start)
        stop = len(s) if end is None else end.end()
        # keep the newline that ends the command line, skip the body
        self.line += s.count("\n", nl + 1, stop)
        self.s = s[:nl + 1] + s[stop:]

    def tokens(self, stop_at_paren: bool = False) -> list:
        s = self.s
        out: list = []
        parts: list = []
        start_line = self.line

        def end_word():
            nonlocal parts
            if parts:
                out.append(Word(parts, start_line))
                parts = []

        while self.i < len(self.s):
            s = self.s
            ch = s[self.i]
            if not parts:
                start_line = self.line
            if ch in " \t\r":
                end_word()
                self.i += 1
            elif ch == "\\":
                if self.i + 1 < len(s) and s[self.i + 1] == "\n":
                    self.line += 1
                    self.i += 2
                elif self.i + 1 < len(s):
                    parts.append(("sq", s[self.i + 1]))
                    self.i += 2
                else:
                    self.i += 1
            elif ch == "\n":
                end_word()
                out.append(Op("\n", self.line))
                self.line += 1
                self.i += 1
            elif ch == "#" and not parts:
                nl = s.find("\n", self.i)
                self.i = len(s) if nl < 0 else nl
            elif ch == "(" and len(parts) == 1 and parts[0][0] == "lit" \
                    and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\+?=", parts[0][1]):
                text = parts[0][1]
                parts = []
                self.i += 1
                line = self.line
                inner = self.tokens(stop_at_paren=True)
                words = [t for t in inner if isinstance(t, Word)]
                out.append(ArrayAssign(text.rstrip("+=").rstrip("="), text.endswith("+="), words, line))
            elif ch == ")" and stop_at_paren:
                end_word()
                self.i += 1
                return out
            elif ch in ";&|()":
                end_word()
                two = s[self.i:self.i + 2]
                if two in ("&&", "||", ";;", "|&"):
                    out.append(Op(two, self.line))
                    self.i += 2
                else:
                    out.append(Op(ch, self.line))
                    self.i += 1
            elif ch in "<>":
                if parts and len(parts) == 1 and parts[0][0] == "lit" and parts[0][1].isdigit():
                    parts = []        # an fd number: 2>&1
                end_word()
                if s.startswith("<<<", self.i):
                    self.i += 3
                elif s.startswith("<<", self.i):
                    self.i += 2
                    self._heredoc()
                    out.append(Op("redir-none", self.line))
                    continue
                else:
                    self.i += 1
                    while self.i < len(s) and s[self.i] in ">&|":
                        self.i += 1
                # '>&2' style: the target is glued to the operator
                m = re.compile(r"\d+|-").match(s, self.i)
                if m and s[self.i - 1] == "&":
                    self.i = m.end()
                    out.append(Op("redir-none", self.line))
                else:
                    out.append(Op("redir", self.line))
            elif ch == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise self.error("unterminated single quote")
                parts.append(("sq", s[self.i + 1:end]))
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
            elif ch == '"':
                self._double_quoted(parts)
            elif ch == "$":
                raw = self._dollar()
                if raw is None:
                    parts.append(("lit", "$"))
                    self.i += 1
                else:
                    parts.append(("exp", raw, False))
            elif ch == "`":
                end = s.find("`", self.i + 1)
                if end < 0:
                    raise self.error("unterminated backquote")
                parts.append(("exp", s[self.i:end + 1], False))
                self.i = end + 1
            else:
                j = self.i
                while j < len(s) and s[j] not in " \t\r\n\\#;&|()<>'\"$`":
                    j += 1
                if j == self.i:     # a '#' inside a word
                    j += 1
                if parts and parts[-1][0] == "lit":
                    parts[-1] = ("lit", parts[-1][1] + s[self.i:j])
                else:
                    parts.append(("lit", s[self.i:j]))
                self.i = j
        if stop_at_paren:
            raise self.error("no closing ')' for an array")
        end_word()
        return out


# ------------------------------------------------------------------------- syntax tree
@dataclass
class Simple:
    assigns: list          # Word (NAME=...) or ArrayAssign
    words: list            # Word
    line: int


@dataclass
class AndOr:
    first: list            # pipeline: list of nodes
    rest: list             # [(op, pipeline)]
    negate: bool = False


@dataclass
class If:
    clauses: list          # [(cond items, body items)]
    orelse: Optional[list]
    line: int


@dataclass
class Skipped:
    what: str
    line: int
    effect: bool           # does the skipped part assign variables or pass flags?


@dataclass
class Group:
    body: list


class _Parser:
    def __init__(self, toks: list):
        self.t = toks
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def kw(self, tok=None) -> Optional[str]:
        tok = tok if tok is not None else self.peek()
        return tok.plain() if isinstance(tok, Word) else None

    def error(self, msg: str) -> InputError:
        tok = self.peek()
        line = tok.line if tok is not None else (self.t[-1].line if self.t else 1)
        return InputError(f"launch script line {line}: {msg}")

    def skip_separators(self):
        while isinstance(self.peek(), Op) and self.peek().text in ("\n", ";", "&"):
            self.i += 1

    def parse_list(self, stops: set) -> tuple[list, Optional[str]]:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("nesting too deep")
        items = []
        try:
            while True:
                self.skip_separators()
                tok = self.peek()
                if tok is None:
                    return items, None
                if isinstance(tok, Op) and tok.text == ")" and ")" in stops:
                    self.i += 1
                    return items, ")"
                if isinstance(tok, Op) and tok.text in (")", ";;"):
                    raise self.error(f"unexpected '{tok.text}'")
                k = self.kw()
                if k in stops:
                    self.i += 1
                    return items, k
                if k in _KEYWORDS_STOP:
                    raise self.error(f"unexpected '{k}'")
                items.append(self.parse_andor())
        finally:
            self.depth -= 1

    def parse_andor(self) -> AndOr:
        negate = False
        if self.kw() == "!":
            negate = True
            self.i += 1
        node = AndOr(self.parse_pipeline(), [], negate)
        while isinstance(self.peek(), Op) and self.peek().text in ("&&", "||"):
            op = self.peek().text
            self.i += 1
            while isinstance(self.peek(), Op) and self.peek().text == "\n":
                self.i += 1
            node.rest.append((op, self.parse_pipeline()))
        return node

    def parse_pipeline(self) -> list:
        cmds = [self.parse_command()]
        while isinstance(self.peek(), Op) and self.peek().text in ("|", "|&"):
            self.i += 1
            while isinstance(self.peek(), Op) and self.peek().text == "\n":
                self.i += 1
            cmds.append(self.parse_command())
        return cmds

    def _skip_to(self, end_kw: str, start_kw: set) -> bool:
        """Skip tokens to the matching ``end_kw`` (nesting on ``start_kw``); returns whether
        the skipped part assigns variables or passes '-' flags."""
        depth, effect, cmd_pos = 1, False, True
        while True:
            tok = self.peek()
            if tok is None:
                raise self.error(f"no closing '{end_kw}'")
            self.i += 1
            if isinstance(tok, Op):
                cmd_pos = tok.text in ("\n", ";", "&&", "||", "|", "(", ";;", "&")
                continue
            if isinstance(tok, ArrayAssign):
                effect = True
                continue
            k = self.kw(tok)
            if cmd_pos and k in start_kw:
                depth += 1
            elif cmd_pos and k == end_kw:
                depth -= 1
                if depth == 0:
                    return effect
            if cmd_pos and tok.parts and tok.parts[0][0] == "lit" and _ASSIGN.match(tok.parts[0][1]):
                effect = True
            elif tok.parts and tok.parts[0][0] in ("lit", "sq", "dq") and tok.parts[0][1].startswith("-"):
                effect = True
            cmd_pos = cmd_pos and k in ("do", "then", "else", "in", "!") or False

    def parse_command(self):
        tok = self.peek()
        k = self.kw()
        line = tok.line if tok is not None else 0
        if k == "if":
            self.i += 1
            clauses, orelse = [], None
            while True:
                cond, stop = self.parse_list({"then"})
                if stop != "then":
                    raise self.error("'if' without 'then'")
                body, stop = self.parse_list({"elif", "else", "fi"})
                clauses.append((cond, body))
                if stop == "elif":
                    continue
                if stop == "else":
                    orelse, stop = self.parse_list({"fi"})
                if stop != "fi":
                    raise self.error("'if' without 'fi'")
                return If(clauses, orelse, line)
        if k in ("for", "while", "until", "select"):
            self.i += 1
            while self.kw() != "do":
                if self.peek() is None:
                    raise self.error(f"'{k}' without 'do'")
                self.i += 1
            self.i += 1
            effect = self._skip_to("done", {"for", "while", "until", "select"})
            return Skipped(f"'{k}' loop", line, effect)
        if k == "case":
            self.i += 1
            effect = self._skip_to("esac", {"case"})
            return Skipped("'case' statement", line, effect)
        if k == "{":
            self.i += 1
            body, stop = self.parse_list({"}"})
            if stop != "}":
                raise self.error("'{' without '}'")
            return Group(body)
        if isinstance(tok, Op) and tok.text == "(":
            self.i += 1
            body, stop = self.parse_list({")"})
            if stop != ")":
                raise self.error("'(' without ')'")
            return Group(body)
        nxt = self.t[self.i + 1] if self.i + 1 < len(self.t) else None
        if k == "function" or (isinstance(tok, Word) and isinstance(nxt, Op) and nxt.text == "("):
            # function definition: skip the body
            self.i += 1 if k != "function" else 2
            while isinstance(self.peek(), Op) and self.peek().text in ("(", ")", "\n"):
                self.i += 1
            if self.kw() == "{":
                self.i += 1
                effect = self._skip_to("}", {"{"})
            else:
                effect = False
            return Skipped("function definition", line, effect)
        if k == "[[":
            words = []
            self.i += 1
            while True:
                t = self.peek()
                if t is None:
                    raise self.error("'[[' without ']]'")
                self.i += 1
                if self.kw(t) == "]]":
                    break
                if (isinstance(t, Op) and t.text.startswith("redir")) or isinstance(t, ArrayAssign):
                    t = Word([("lit", UNRESOLVED)], t.line)      # '<' '>' inside [[ ]]: not evaluated
                words.append(t if isinstance(t, Word) else Word([("lit", t.text)], t.line))
            return Simple([], [Word([("lit", "[[")], line)] + words, line)
        assigns, words = [], []
        while True:
            t = self.peek()
            if t is None:
                break
            if isinstance(t, Op):
                if t.text == "redir":
                    self.i += 1
                    if isinstance(self.peek(), Word):
                        self.i += 1
                    continue
                if t.text == "redir-none":
                    self.i += 1
                    continue
                break
            self.i += 1
            if isinstance(t, ArrayAssign):
                (words if words else assigns).append(t)
            elif not words and t.parts[0][0] == "lit" and _ASSIGN.match(t.parts[0][1]):
                assigns.append(t)
            else:
                words.append(t)
        return Simple(assigns, words, line)
