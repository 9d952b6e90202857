"""Each spelling of one Digital Link is one cache entry.

Found looking for the next attack, after the random query parameters: the response cache keyed a lot's passport by
the raw path, and a Digital Link may percent-encode any character (``/10/L%30%30001`` is ``/10/L00001``). Each
spelling of one lot number was a cache miss and a rebuild (7 of 7 spellings of a six-character lot number went to
the router), so an attacker had as many misses as spellings.

Now the key is the link's canonical path (``routes/resolver._canonical``): every spelling is the same entry.
"""

from __future__ import annotations

from tests.api.conftest import World


def test_every_spelling_of_a_lot_passport_is_one_entry(security_world: World, routed: list[str]) -> None:
    w = security_world
    lot = w.lot()
    number = lot["lotNumber"]
    path = lot["uri"][len(w.settings.resolver_base_url):] + "/passport"
    first = w.client.get(path)
    assert first.status_code == 200
    spellings = []
    for n in range(len(number)):
        for hexes in ("%{:02X}", "%{:02x}"):
            encoded = "".join(hexes.format(ord(c)) if i == n else c for i, c in enumerate(number))
            spellings.append(path.replace(f"/10/{number}/", f"/10/{encoded}/"))
    spellings = list(dict.fromkeys(spellings))
    routed.clear()
    for spelling in spellings:
        answer = w.client.get(spelling)
        assert answer.status_code == 200 and answer.content == first.content, spelling
    assert routed == [], f"{len(routed)} of {len(spellings)} spellings were built again"
