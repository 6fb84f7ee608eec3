"""One invocation of a function of ``template.yaml`` in this process, as the Lambda runtime makes it:
``python -m devkit.lambda_process <FunctionLogicalId> <event.json>`` with the function's environment already
set (``make invoke LOCAL=process`` sets it exactly as ``sam local invoke`` would).

As ``sam local invoke`` does, the function's output (log lines, EMF metrics) goes to stderr and its answer, as
JSON, to stdout; an exception is answered as Lambda's error document and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from devkit.template import load_template


def main(argv: list[str] | None = None) -> int:
    function, event_path = (argv if argv is not None else sys.argv[1:])[:2]
    answer = sys.stdout
    # Before the handler's modules are imported: Powertools binds its log stream and prints EMF to sys.stdout.
    sys.stdout = sys.stderr
    from devkit.sandbox import REPO, FakeLambdaContext, load_module
    from kinotrakt.clock import SystemClock

    properties = load_template()["Resources"][function]["Properties"]
    module_name, _, handler_name = str(properties["Handler"]).rpartition(".")
    module = load_module(REPO / str(properties["CodeUri"]) / f"{module_name}.py", function)
    event = json.loads(Path(event_path).read_text())
    context = FakeLambdaContext(
        SystemClock(),
        float(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]),
        function_name=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        memory_limit_in_mb=int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]),
        log_group_name=os.environ["AWS_LAMBDA_LOG_GROUP_NAME"],
    )
    try:
        result = getattr(module, handler_name)(event, context)
    except Exception as exc:
        traceback.print_exc()
        error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        print(json.dumps(error), file=answer, flush=True)
        return 1
    print(json.dumps(result, ensure_ascii=False), file=answer, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
