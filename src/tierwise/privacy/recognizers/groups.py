"""Nationalities, religious and political groups (`NRP`, Presidio's name; spaCy's `NORP`).

A word list, so it works without the NER extra: the English demonyms of every UN member state
and a few territories and peoples (singular, plural and the plural forms in common use),
religions and their followers, and political movements. With the NER extra, spaCy's NORP
entities are added (see `ner.py`). Matched case-insensitively on whole words; words that are
also everyday words in lower case (`polish`, `swede`, `dutch` as in "go dutch") count only
capitalised.

These are GDPR Art. 9 "special categories" (racial or ethnic origin, religious beliefs,
political opinions) when they describe a person; most mentions do not ("an Italian
restaurant", "the French government"), so `NRP` is in no data class by default: the class
`affiliations` (or listing `NRP`) turns it on where such mentions must not leave.
"""

from __future__ import annotations

from collections.abc import Iterator

import ahocorasick_rs
import regex

from tierwise.privacy.finding import Finding
from tierwise.privacy.recognizers.prescan import Prescan, prescan_of

# Demonyms (adjective / person); plurals are derived below.
_DEMONYMS = """
afghan albanian algerian american andorran angolan antiguan argentine argentinian armenian australian austrian
azerbaijani azeri bahamian bahraini bangladeshi barbadian belarusian belgian belizean belizian beninese bhutanese
bolivian bosnian botswanan brazilian british briton bruneian bulgarian burkinabe burmese burundian cambodian
cameroonian canadian cape-verdean chadian chilean chinese colombian comorian congolese costa-rican croatian
cuban cypriot czech danish dane djiboutian dominican dutch dutchman ecuadorian ecuadorean egyptian emirati
english equatoguinean eritrean estonian eswatini ethiopian fijian filipino finnish finn french frenchman
gabonese gambian georgian german ghanaian greek grenadian guatemalan guinean guyanese haitian honduran hungarian
icelandic icelander indian indonesian iranian iraqi irish irishman israeli italian ivorian jamaican japanese
jordanian kazakh kazakhstani kenyan kiribati korean kosovar kuwaiti kyrgyz lao laotian latvian lebanese
liberian libyan liechtensteiner lithuanian luxembourgish luxembourger macedonian malagasy malawian malaysian
maldivian malian maltese marshallese mauritanian mauritian mexican micronesian moldovan monegasque mongolian
montenegrin moroccan mozambican namibian nauruan nepalese nepali nicaraguan nigerian nigerien norwegian omani
pakistani palauan palestinian panamanian papuan paraguayan persian peruvian polish pole portuguese qatari
romanian russian rwandan salvadoran samoan sammarinese saudi scottish scot senegalese serbian seychellois
sierra-leonean singaporean slovak slovakian slovene slovenian somali south-african spanish spaniard
sri-lankan sudanese surinamese swazi swedish swede swiss syrian taiwanese tajik tanzanian thai togolese
tongan trinidadian tunisian turkish turk turkmen tuvaluan ugandan ukrainian uruguayan uzbek vanuatuan
venezuelan vietnamese welsh welshman yemeni zambian zimbabwean
greenlander greenlandic faroese basque catalan chechen kurdish kurd tatar roma romani sami inuit aboriginal
maori hispanic latino latina latinx arab arabic african asian european caucasian anglo-saxon slavic nordic
scandinavian balkan berber bedouin tibetan uyghur uighur hmong pashtun punjabi tamil sikh bengali gujarati
"""
_RELIGIOUS = """
christian catholic protestant orthodox evangelical anglican lutheran methodist baptist presbyterian mormon
pentecostal adventist quaker amish muslim moslem islamic sunni shia shiite shii jewish jew judaic hindu
buddhist jain sikh bahai baha'i zoroastrian taoist shinto atheist agnostic rastafarian wiccan pagan
"""
_POLITICAL = """
democrat democratic-party republican gop tory tories labourite socialist communist marxist leninist maoist
fascist nazi neo-nazi anarchist libertarian liberal conservative centrist progressive populist nationalist
separatist zionist islamist jihadist green-party social-democrat christian-democrat
"""
# Lower-case forms that are everyday words: counted only when written with a capital.
_CAPITAL_ONLY = frozenset({"polish", "pole", "swede", "dutch", "turkey", "turk", "china", "french", "english",
                           "liberal", "conservative", "progressive", "green", "democratic", "republican",
                           "orthodox", "catholic", "roma", "scot", "jew", "finn", "dane", "lao", "thai",
                           "pagan", "democrat", "socialist", "nationalist"})


def _forms(word: str) -> set[str]:
    """The word and its plural: `-man` -> `-men`; no plural for adjectives in -ese, -ss, -sh, -ch
    (`the Japanese`, `Swiss`, `English`, `Czech`); else `+s`."""
    if word.endswith("man"):
        return {word, word[:-3] + "men"}
    if word.endswith(("ese", "ss", "sh", "ch")):
        return {word}
    return {word, word + "s"}


def _words() -> list[str]:
    out: set[str] = set()
    for block in (_DEMONYMS, _RELIGIOUS, _POLITICAL):
        for w in block.split():
            for form in _forms(w):
                out.add(form.replace("-", " ").replace("'", " "))  # as in `Prescan.word_mask`
    return sorted(out)


_WORDS = _words()
_AC = ahocorasick_rs.AhoCorasick([f" {w} " for w in _WORDS])


# A demonym before one of these is part of a place's or a body's name ("Czech Republic",
# "Solomon Islands", "European Union", "Irish Sea"): a place, not a group.
_NAME_HEADS = regex.compile(
    r"[ \t]+(?:Republic|Republics|Islands?|Empire|Kingdom|Federation|Union|Emirates|Sea|Ocean|Peninsula|Alps|"
    r"Riviera|Coast|Gulf|Basin|Highlands|Confederation|Commonwealth|Territory|Territories|Province|State|States)\b"
)


class GroupRecognizer:
    name = "wordlist.nrp"
    entities = frozenset({"NRP"})

    def find(self, text: str, pre: Prescan | None = None) -> Iterator[Finding]:
        pre = prescan_of(text, pre)
        # ` w ` at (a, b) of the padded mask is the word at a .. b - 2 of the text
        for i, a, b in pre_hits(pre):
            word = _WORDS[i]
            if (word in _CAPITAL_ONLY or word[:-1] in _CAPITAL_ONLY) and not text[a].isupper():
                continue
            if _NAME_HEADS.match(text, b - 2):
                continue
            # above NER (0.7): the word itself is certain; NER often labels it a place or an organisation
            yield Finding("NRP", a, b - 2, 0.75, self.name)


def pre_hits(pre: Prescan) -> list[tuple[int, int, int]]:
    if not pre.lower_exact:
        return []  # lower-casing changed lengths: offsets would not agree (NER still runs)
    return _AC.find_matches_as_indexes(pre.word_mask, overlapping=True)
