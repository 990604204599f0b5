"""weft.Error and one subclass per weft_result_t code, carrying weft_last_error's text."""
from . import _lib


class Error(RuntimeError):
    """A Weft call failed. .code is the weft_result_t value, .message weft_last_error()."""

    code = -1

    def __init__(self, code, message, call=""):
        self.code = code
        self.message = message
        self.call = call
        name = _lib.lib.weft_strerror(code)
        name = name.decode(errors="replace") if name else "code %d" % code
        head = "%s: %s" % (call, name) if call else name
        super().__init__("%s: %s" % (head, message) if message else head)


class InvalidArgError(Error, ValueError):
    code = 1


class SystemError_(Error):
    code = 2


class RemoteError(Error):
    code = 3


class TimeoutError_(Error, TimeoutError):
    code = 4


class UnsupportedError(Error):
    code = 5


class AbortedError(Error):
    code = 6


class NoMemoryError(Error, MemoryError):
    code = 7


class AuthError(Error):
    code = 8


class InternalError(Error):
    code = 9


_BY_CODE = {c.code: c for c in (InvalidArgError, SystemError_, RemoteError, TimeoutError_,
                                 UnsupportedError, AbortedError, NoMemoryError, AuthError,
                                 InternalError)}


def check(result, call):
    """Raises the Error subclass for `result` unless it is WEFT_OK. Call it on the thread that
    made the call: weft_last_error is per thread."""
    if result == 0:
        return
    msg = _lib.lib.weft_last_error()
    msg = msg.decode(errors="replace") if msg else ""
    raise _BY_CODE.get(result, Error)(result, msg, call)
