"""LiteLLM proxy callback for the openclaw tests: appends every request the proxy receives (before
it routes it) to the JSON-lines file named by $OPENCLAW_LITELLM_RECORD, so a test can assert what
the gateway sent from the proxy's side. Loaded by tests/support/litellm.rs through the generated
config (`litellm_settings.callbacks: record_requests.proxy_handler_instance`)."""
import json, os
from litellm.integrations.custom_logger import CustomLogger

class RecordRequests(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        rec = {"call_type": str(call_type)}
        for k in ("model", "messages", "system", "stream", "max_tokens", "max_completion_tokens", "stream_options"):
            if k in data:
                rec[k] = data[k]
        with open(os.environ["OPENCLAW_LITELLM_RECORD"], "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        return data

proxy_handler_instance = RecordRequests()
