"""HTTP helpers for the sync client: requests with retries, URLs and rate limits."""

import base64
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request


def fetch_json(url, timeout=10, headers=None):
    """Download a URL and decode its body as JSON."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def with_retries(call, attempts=4, base_delay=0.5):
    """Call a function again after failures, waiting exponentially longer with random jitter."""
    for attempt in range(attempts):
        try:
            return call()
        except (urllib.error.URLError, TimeoutError):
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt * (0.5 + random.random()))
    return None


def build_query_url(base, params):
    """Append URL-encoded query parameters to an address, keeping the ones already there."""
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query)
    query.extend(sorted(params.items()))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def basic_auth_header(user, password):
    """Make the Authorization header value for a username and password."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def parse_link_header(value):
    """Read the next and previous page addresses out of a pagination Link header."""
    links = {}
    for part in value.split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        url = section[0].strip().strip("<>")
        for param in section[1:]:
            key, _, rel = param.strip().partition("=")
            if key == "rel":
                links[rel.strip('"')] = url
    return links


def is_success(status):
    """Tell whether an HTTP status code means the request worked."""
    return 200 <= status < 300


def parse_retry_after(value, now=None):
    """Turn a Retry-After header into a number of seconds to wait."""
    if value.isdigit():
        return int(value)
    from email.utils import parsedate_to_datetime

    moment = parsedate_to_datetime(value).timestamp()
    return max(0, int(moment - (now or time.time())))


class TokenBucket:
    """Limit how often something may happen: a bucket refilled at a steady rate."""

    def __init__(self, rate, capacity):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = time.monotonic()

    def _refill(self):
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def try_acquire(self, cost=1):
        """Take tokens if enough are left and say whether the action may go ahead."""
        self._refill()
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def wait_time(self, cost=1):
        """How many seconds until enough tokens are available."""
        self._refill()
        missing = cost - self.tokens
        return max(0.0, missing / self.rate)


class Paginator:
    """Iterate over every item of an API that returns results one page at a time."""

    def __init__(self, fetch, first_url):
        self.fetch = fetch
        self.next_url = first_url

    def __iter__(self):
        while self.next_url:
            page = self.fetch(self.next_url)
            yield from page["items"]
            self.next_url = page.get("next")
