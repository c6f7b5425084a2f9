"""Stack frames as Convex prints them: ``crates/common/src/errors.rs`` (``FrameData``'s
Display, ``format_location``, ``JsError::from_frames``)."""

from __future__ import annotations

import pytest

from udf.source_map import OriginalPosition
from udf.stack_frames import format_frame, render_frames


def frame(**fields):
    base = {
        "typeName": None,
        "functionName": None,
        "methodName": None,
        "fileName": "../convex/a.ts",
        "lineNumber": 3,
        "columnNumber": 9,
        "evalOrigin": None,
        "isToplevel": True,
        "isEval": False,
        "isNative": False,
        "isConstructor": False,
        "isAsync": False,
        "isPromiseAll": False,
        "promiseIndex": None,
    }
    return base | fields


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"functionName": "handler"}, "    at handler (../convex/a.ts:3:9)"),
        ({"functionName": "handler", "isAsync": True}, "    at async handler (../convex/a.ts:3:9)"),
        ({}, "    at ../convex/a.ts:3:9"),  # anonymous top-level code: the location alone
        ({"isToplevel": False}, "    at <anonymous> (../convex/a.ts:3:9)"),
        (
            {"isToplevel": False, "typeName": "Object"},
            "    at Object.<anonymous> (../convex/a.ts:3:9)",
        ),
        (
            {"isToplevel": False, "typeName": "Foo", "methodName": "run"},
            "    at Foo.run (../convex/a.ts:3:9)",
        ),
        # Convex writes "Type." only when the name starts with it, "[as m]" when it ends with m.
        (
            {"isToplevel": False, "typeName": "Object", "functionName": "run", "methodName": "run"},
            "    at run [as run] (../convex/a.ts:3:9)",
        ),
        (
            {"isToplevel": False, "typeName": "Foo", "functionName": "Foo.go", "methodName": "x"},
            "    at Foo.Foo.go (../convex/a.ts:3:9)",
        ),
        ({"isConstructor": True, "functionName": "Thing"}, "    at new Thing (../convex/a.ts:3:9)"),
        ({"isConstructor": True}, "    at new <anonymous> (../convex/a.ts:3:9)"),
        (
            {
                "isPromiseAll": True,
                "promiseIndex": 1,
                "isAsync": True,
                "fileName": None,
                "lineNumber": None,
                "columnNumber": None,
            },
            "    at async Promise.all (index 1)<anonymous>",
        ),
        ({"functionName": "map", "isNative": True}, "    at map (native)"),
        ({"functionName": "f", "fileName": None, "lineNumber": None}, "    at f (<anonymous>)"),
    ],
)
def test_frame_forms(fields, text):
    assert format_frame(frame(**fields)) == text


def lookup(url, line, column):
    return {
        "convex:/a.js": OriginalPosition("../convex/a.ts", line - 10, column),
        "convex:/_deps/c.js": OriginalPosition(
            "../node_modules/convex/src/server/impl/registration_impl.ts", 90, 31
        ),
        "convex:/_deps/zod.js": OriginalPosition("../node_modules/zod/lib/types.js", 5, 1),
    }.get(url)


def has_map(url):
    return url.startswith("convex:/")


def test_only_runtime_frames_at_either_end_are_left_out():
    frames = [
        frame(functionName="performAsyncSyscall", fileName="convex:/_deps/c.js"),
        frame(
            functionName="parse",
            fileName="convex:/_deps/zod.js",
            isToplevel=False,
            typeName="ZodObject",
            methodName="parse",
        ),
        frame(functionName="handler", fileName="convex:/a.js", lineNumber=20, isAsync=True),
        frame(functionName="invokeFunction", fileName="convex:/_deps/c.js"),  # between: kept
        frame(functionName="start", fileName="headwater:/calls.js"),  # no map: dropped
        frame(functionName="outer", fileName="convex:/a.js", lineNumber=30),
        frame(functionName="invokeQuery", fileName="convex:/_deps/c.js"),
        frame(functionName="invokeQuery", fileName="convex:/_deps/c.js"),
    ]
    assert render_frames(frames, lookup, has_map) == (
        "    at parse [as parse] (../node_modules/zod/lib/types.js:5:1)",
        "    at async handler (../convex/a.ts:10:9)",
        "    at invokeFunction (../node_modules/convex/src/server/impl/registration_impl.ts:90:31)",
        "    at outer (../convex/a.ts:20:9)",
    )


def test_unmapped_positions_keep_the_module_url():
    frames = [frame(functionName="f", fileName="convex:/b.js", lineNumber=1, columnNumber=2)]
    assert render_frames(frames, lambda *_: None, has_map) == ("    at f (convex:/b.js:1:2)",)
