"""Each structured recognizer: valid values found (several locales), checksum failures and
look-alikes not found."""

from __future__ import annotations

import pytest

from tests.privacy.support import found
from tierwise.privacy.detect import Detector
from tierwise.privacy.detect_config import DetectionConfig

POSITIVE = [
    # payment cards: Luhn, grouped or not; 12-digit Maestro with its prefix
    ("pay with 4111 1111 1111 1111 today", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("card 4111-1111-1111-1111.", "CREDIT_CARD", "4111-1111-1111-1111"),
    ("amex 378282246310005", "CREDIT_CARD", "378282246310005"),
    ("maestro 501864667909?", "CREDIT_CARD", "501864667909"),
    # grouped with dots, slashes or underscores (each reached a frontier model unredacted before)
    ("card 4111.1111.1111.1111 ok", "CREDIT_CARD", "4111.1111.1111.1111"),
    ("card 4111/1111/1111/1111", "CREDIT_CARD", "4111/1111/1111/1111"),
    ("card 4111_1111_1111_1111", "CREDIT_CARD", "4111_1111_1111_1111"),
    ("amex 3782.822463.10005", "CREDIT_CARD", "3782.822463.10005"),
    # IBAN, mod 97, several countries and lengths
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("to GB82WEST12345698765432.", "IBAN_CODE", "GB82WEST12345698765432"),
    ("konto SE45 5000 0000 0583 9825 7466", "IBAN_CODE", "SE45 5000 0000 0583 9825 7466"),
    ("compte FR14 2004 1010 0505 0001 3M02 606", "IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606"),
    ("konto NO9386011117947", "IBAN_CODE", "NO9386011117947"),
    ("my iban is gb82west12345698765432", "IBAN_CODE", "gb82west12345698765432"),
    # national identifiers
    ("SSN 536-22-1234", "US_SSN", "536-22-1234"),
    ("my social security number is 536221234", "US_SSN", "536221234"),
    ("NI number AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
    ("personnummer 811218-9876", "SE_PERSONNUMMER", "811218-9876"),
    ("pnr 19811218-9876", "SE_PERSONNUMMER", "19811218-9876"),
    ("Steuer-ID 86095742719", "DE_TAX_ID", "86095742719"),
    ("NIR 1 85 05 78 006 084 91", "FR_INSEE", "1 85 05 78 006 084 91"),
    ("BSN: 111222333", "NL_BSN", "111222333"),
    ("DNI 12345678Z", "ES_DNI", "12345678Z"),
    ("NIE X1234567L", "ES_DNI", "X1234567L"),
    ("codice fiscale RSSMRA85T10A562S", "IT_FISCAL_CODE", "RSSMRA85T10A562S"),
    # contact
    ("mail Jane.Doe+tag@example.co.uk now", "EMAIL_ADDRESS", "Jane.Doe+tag@example.co.uk"),
    ("ring me on 070-123 45 67 please", "PHONE_NUMBER", "070-123 45 67"),
    ("ring 08-123 456 78", "PHONE_NUMBER", "08-123 456 78"),
    ("Tel. 030 901820", "PHONE_NUMBER", "030 901820"),
    ("appelez le 01 42 68 53 00", "PHONE_NUMBER", "01 42 68 53 00"),
    ("call 020 7946 0958 now", "PHONE_NUMBER", "020 7946 0958"),
    ("reach us at +49 30 901820", "PHONE_NUMBER", "+49 30 901820"),
    ("+33 1 42 68 53 00", "PHONE_NUMBER", "+33 1 42 68 53 00"),
    ("+44 20 7946 0958", "PHONE_NUMBER", "+44 20 7946 0958"),
    ("(212) 555-0199 is the desk", "PHONE_NUMBER", "(212) 555-0199"),
    ("416 60 039 office", "PHONE_NUMBER", "416 60 039"),
    ("from 192.168.1.20 to", "IP_ADDRESS", "192.168.1.20"),
    ("host 2001:db8::8a2e:370:7334 down", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
    ("postgres://admin:s3cr3tPass@db.internal:5432/app", "URL_CREDENTIALS", "admin:s3cr3tPass"),
    # secrets
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123 ok", "SECRET", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyzABCD", "SECRET", "sk-ant-api03-abcdefghijklmnopqrstuvwxyzABCD"),
    ("token ghp_" + "a1B2" * 9, "SECRET", "ghp_" + "a1B2" * 9),
    ("aws AKIAIOSFODNN7EXAMPLE", "SECRET", "AKIAIOSFODNN7EXAMPLE"),
    ("slack xoxb-123456789012-abcdefghijkl", "SECRET", "xoxb-123456789012-abcdefghijkl"),
    ("glpat-abcdefghij0123456789", "SECRET", "glpat-abcdefghij0123456789"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "SECRET", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "SECRET", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("password = hunter2hunter", "SECRET", "hunter2hunter"),
    ("Authorization: Bearer abcDEF123456ghiJKL789", "SECRET", "abcDEF123456ghiJKL789"),
    ("value xK9fL2mQ8vR4tZ7wB1nC5hJ3 here", "SECRET", "xK9fL2mQ8vR4tZ7wB1nC5hJ3"),
    ("token: 3f786850e387550fdab836ed7e6dc881de23001b", "SECRET", "3f786850e387550fdab836ed7e6dc881de23001b"),
    # dates of birth, several languages
    ("She was born on 2/19/1956.", "DATE_OF_BIRTH", "2/19/1956"),
    ("DOB: 1985-03-12", "DATE_OF_BIRTH", "1985-03-12"),
    ("date of birth March 12, 1985", "DATE_OF_BIRTH", "March 12, 1985"),
    ("Geburtsdatum: 12.03.1985", "DATE_OF_BIRTH", "12.03.1985"),
    ("née le 12 mars 1985", "DATE_OF_BIRTH", "12 mars 1985"),
    ("född 1985-03-12", "DATE_OF_BIRTH", "1985-03-12"),
    ("fecha de nacimiento: 12 de marzo de 1985", "DATE_OF_BIRTH", "12 de marzo de 1985"),
    # street addresses, several languages
    ("lives at 221B Baker Street", "STREET_ADDRESS", "221B Baker Street"),
    ("Ich wohne in der Friedhofstrasse 33", "STREET_ADDRESS", "Friedhofstrasse 33"),
    ("on Villacher Strasse 89", "STREET_ADDRESS", "Villacher Strasse 89"),
    ("chez moi, Rue des Lilas 12", "STREET_ADDRESS", "Rue des Lilas 12"),
    ("Calle Mayor 5", "STREET_ADDRESS", "Calle Mayor 5"),
    ("Drottninggatan 53", "STREET_ADDRESS", "Drottninggatan 53"),
    ("send it to P.O. Box 287", "STREET_ADDRESS", "P.O. Box 287"),
    ("PSC 2721, Box 8637", "STREET_ADDRESS", "PSC 2721, Box 8637"),
]


@pytest.mark.parametrize("text, entity, value", POSITIVE, ids=[f"{e}:{v[:24]}" for _, e, v in POSITIVE])
def test_finds(det, text, entity, value):
    assert (entity, value) in found(det, text)


NEGATIVE = [
    ("card 4111 1111 1111 1112", "CREDIT_CARD"),  # Luhn fails
    ("pi 3.14159265358979 e 2.718281828459045", "CREDIT_CARD"),  # long decimals are not dotted cards
    ("card 4111.1111.1111.1112", "CREDIT_CARD"),  # dotted, Luhn fails
    ("order 123456789012 shipped", "CREDIT_CARD"),  # 12 digits, no Maestro prefix, no card word
    ("IBAN DE89 3704 0044 0532 0130 01", "IBAN_CODE"),  # mod 97 fails
    ("XX89 3704 0044 0532 0130 00", "IBAN_CODE"),  # no such country
    ("SSN 000-12-3456", "US_SSN"),
    ("SSN 666-12-3456", "US_SSN"),
    ("SSN 900-12-3456", "US_SSN"),
    ("SSN 123-00-4567", "US_SSN"),
    ("call id 536221234", "US_SSN"),  # bare 9 digits without an SSN cue
    ("QQ 12 34 56 C", "UK_NINO"),
    ("AB 12 34 56 E", "UK_NINO"),
    ("personnummer 811218-9877", "SE_PERSONNUMMER"),  # Luhn fails
    ("8112189876", "SE_PERSONNUMMER"),  # bare 10 digits, no cue
    ("Steuer-ID 86095742718", "DE_TAX_ID"),
    ("111222333", "NL_BSN"),  # 11-proof holds but no BSN cue
    ("BSN: 111222334", "NL_BSN"),
    ("DNI 12345678A", "ES_DNI"),
    ("RSSMRA85T10A562X", "IT_FISCAL_CODE"),
    ("999.1.1.1 is not an address", "IP_ADDRESS"),
    ("version 1.2.3.4 released", "IP_ADDRESS"),
    ("a::b is C++ scope", "IP_ADDRESS"),
    ("She wrote on 1978-04-13 12:20:39", "PHONE_NUMBER"),
    ("driver's license number is 2270-66-1551", "PHONE_NUMBER"),
    ("commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it", "SECRET"),
    ("get_user_by_email_address and MAX_RETRY_COUNT_FOR_REQUESTS", "SECRET"),
    ("password = {{PASSWORD}}", "SECRET"),
    ("the meeting on 12 March 2024 was born of necessity", "DATE_OF_BIRTH"),
    ("meeting on 12 March 2024", "STREET_ADDRESS"),
    ("I have 3 apples and 4 oranges", "STREET_ADDRESS"),
    ("During the festival, fostering and answering", "STREET_ADDRESS"),
    ("user@localhost", "EMAIL_ADDRESS"),
    # code is not personal data
    ('uid = "550e8400-e29b-41d4-a716-446655440000"', "PHONE_NUMBER"),
    ("connect to 127.0.0.1:5432 or ::1", "IP_ADDRESS"),
    ("listen on 0.0.0.0", "IP_ADDRESS"),
    ("returns UserAccountSettingsV2 from getUserById2Handler", "SECRET"),
]


@pytest.mark.parametrize("text, entity", NEGATIVE, ids=[f"{e}:{t[:24]}" for t, e in NEGATIVE])
def test_does_not_find(det, text, entity):
    assert [v for e, v in found(det, text) if e == entity] == []


def test_pem_private_key_block_is_one_secret(det):
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7x0abc\nQWERTYUIOP1234567890\n-----END RSA PRIVATE KEY-----"
    text = f"here is my key:\n{pem}\nthanks"
    assert ("SECRET", pem) in found(det, text)


def test_phone_regions_come_from_config():
    only_us = Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": ["PHONE_NUMBER"]}}, "phone_regions": ["US"], "ner": {"enabled": False}}))
    with_se = Detector(DetectionConfig.model_validate({
        "classes": {"c": {"detectors": ["PHONE_NUMBER"]}}, "phone_regions": ["US", "SE"], "ner": {"enabled": False}}))
    text = "svara 070-123 45 67 snart"
    assert found(only_us, text) == []
    assert found(with_se, text) == [("PHONE_NUMBER", "070-123 45 67")]


def test_only_the_entities_of_configured_classes_are_reported():
    d = Detector(DetectionConfig.model_validate({"classes": {"secrets": {}}, "ner": {"enabled": False}}))
    text = "mail jane@example.com key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123"
    assert [e for e, _ in found(d, text)] == ["SECRET"]
    assert {r.name for r in d.recognizers} == {"secrets", "pattern.url_credentials"}
