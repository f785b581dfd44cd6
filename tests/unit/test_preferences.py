"""The preference center's words and page: levels, languages, escaping, who may frame it."""

from edge_node.http import preference_page
from edge_node.preferences import Interest, PreferenceView, Purpose, Reason, interest_level, mood_of

PAGE = preference_page.Page(client_key="ck_x", token="tok", lang="en", embed=False)


def view(**changes) -> PreferenceView:
    base = dict(purposes=[Purpose(name=n, granted=True, at=1.8e9, policy_version="v1")
                          for n in ("sentiment", "personalization", "cohort_analytics")],
                profiled=True, interests=[], mood="none", reasons=[], policy_version="v1")
    return PreferenceView(**{**base, **changes})


def test_levels_put_numbers_into_words():
    assert [interest_level(s) for s in (2.0, 0.4, -0.3)] == ["strong", "positive", "negative"]
    assert mood_of(0.6, 3) == "positive" and mood_of(-0.5, 2) == "negative" and mood_of(0.1, 4) == "mixed"
    assert mood_of(0.9, 0.2) == "none"  # a fraction of a text says nothing


def test_what_a_client_sent_is_shown_as_text_never_as_markup():
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    html = preference_page.render(view(interests=[Interest(category=hostile, level="strong")],
                                       reasons=[Reason(item_id=hostile, reason="because " + hostile, at=1.8e9)]),
                                  preference_page.Page(client_key='ck"><x', token='t"><x', lang="en", embed=True),
                                  "nonce")
    assert "<script" not in html and "<img" not in html and '"><x' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="embed"' in html


def test_languages_are_negotiated_and_every_catalog_is_complete():
    catalogs = preference_page.catalogs()
    assert {"en", "de"} <= set(catalogs)
    english = set(catalogs["en"])
    assert all(set(strings) == english for strings in catalogs.values())
    assert preference_page.negotiate("de", None) == "de"
    assert preference_page.negotiate(None, "fr-FR,fr;q=0.9,de;q=0.8,en;q=0.5") == "de"
    assert preference_page.negotiate("xx", "ja") == "en"
    assert preference_page.negotiate(None, "de;q=nonsense,en") == "en"
    german = preference_page.render(view(), preference_page.Page(client_key="k", token="t", lang="de",
                                                                 embed=False), "n")
    assert '<html lang="de">' in german and "Ihre Personalisierungseinstellungen" in german


def test_only_well_formed_app_origins_may_frame_the_page():
    assert preference_page.frame_ancestors(["https://shop.example", "http://127.0.0.1:8080"]) == \
        "'self' https://shop.example http://127.0.0.1:8080"
    # An origin that would inject a directive (or a header) is left out.
    assert preference_page.frame_ancestors(["https://a.example; script-src *", "https://b.example\r\nX: y"]) == "'self'"
    headers = preference_page.headers("abc", [])
    assert headers["content-security-policy"].startswith("default-src 'none'; style-src 'nonce-abc'")
    assert "script-src" not in headers["content-security-policy"]
