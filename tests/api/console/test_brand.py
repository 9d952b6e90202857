"""A brand's pages: products and lots through forms that call the write API's own services; errors in plain words
next to the field; a form sent twice writes once."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from api.models import Lot, Product

from ..conftest import GTIN_A_LOTS, GTIN_B
from .helpers import form_fields, sign_in


def _lot_form(client: Any, **values: str) -> dict[str, str]:
    fields = form_fields(client.get("/console/lots").text)
    return {**fields, "lot_number": "L", "material_code": "CO", "mass_grams": "5000", "recycled_share": "0",
            **values}


def test_a_brand_registers_a_lot_and_sees_what_is_left(world: Any) -> None:
    client = sign_in(world, "brand")
    number = world.unique("CL")
    answer = client.post("/console/lots", data=_lot_form(client, lot_number=number, recycled_share="12.5",
                                                         certificates="https://cert.example/gots/1\nhttps://cert.example/grs/2"))
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].endswith("?ok=registered")
    page = client.get(answer.headers["location"])
    assert page.status_code == 200
    assert f"Lot {number}" in page.text and "Lot registered." in page.text
    assert re.search(r'<dd id="left">5,000&nbsp;g</dd>', page.text)
    assert "https://cert.example/grs/2" in page.text
    with world.service.sessions() as session:
        lot = session.scalar(select(Lot).where(Lot.lot_number == number))
        assert lot is not None and lot.recycled_share_bps == 1250 and len(lot.certificates) == 2
    assert number in client.get("/console/lots").text


def test_a_lots_page_lists_the_items_made_from_it_with_their_grams(world: Any) -> None:
    cotton, polyester = world.lot(grams=10_000), world.lot(code="PES", grams=10_000)
    tees = [world.item([(cotton["lotId"], 150), (polyester["lotId"], 30)]) for _ in range(2)]
    other = world.item([(polyester["lotId"], 90)])
    client = sign_in(world, "brand")
    page = client.get(f"/console/lots/{cotton['lotId']}").text
    assert "2 of yours." in page and '<dd id="left">9,700&nbsp;g</dd>' in page
    for tee in tees:
        assert re.search(rf'>{tee["serial"]}</a></td>\s*<td>made</td>\s*<td class="num">150&nbsp;g</td>', page)
    assert other["serial"] not in page  # made from the polyester only
    assert re.search(rf'>{other["serial"]}</a></td>\s*<td>made</td>\s*<td class="num">90&nbsp;g</td>',
                     client.get(f"/console/lots/{polyester['lotId']}").text)


def test_errors_are_shown_next_to_their_field_and_nothing_typed_is_lost(world: Any) -> None:
    client = sign_in(world, "brand")
    number = world.unique("CL")
    answer = client.post("/console/lots", data=_lot_form(client, lot_number=number, mass_grams="lots",
                                                         origin="Gujarat, India"))
    assert answer.status_code == 422
    assert re.search(r'id="e-mass_grams">A whole number, please.<', answer.text)
    assert 'value="Gujarat, India"' in answer.text and f'value="{number}"' in answer.text
    other = client.post("/console/lots", data=_lot_form(client, lot_number=number, gtin=GTIN_B))
    assert other.status_code == 422
    assert re.search(r'id="e-gtin">[^<]*not under a company prefix', other.text)


def test_a_form_sent_twice_registers_one_lot(world: Any) -> None:
    client = sign_in(world, "brand")
    number = world.unique("CL")
    form = _lot_form(client, lot_number=number, gtin=GTIN_A_LOTS)
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(client.post("/console/lots", data=form)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["location"] == answers[1].headers["location"]
    again = client.post("/console/lots", data=form)  # later, the same form again (the back button)
    assert again.status_code == 303 and again.headers["location"] == answers[0].headers["location"]
    with world.service.sessions() as session:
        assert session.scalar(select(func.count()).where(Lot.lot_number == number)) == 1


def test_a_brand_edits_a_products_master_data(world: Any) -> None:
    client = sign_in(world, "brand")
    fields = form_fields(client.get("/console/products").text)
    answer = client.post("/console/products", data={**fields, "gtin": GTIN_A_LOTS, "name": "Organic tee",
                                                    "care": "Wash at 30 °C", "language": "en"})
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"])
    assert "Organic tee" in page.text and "Wash at 30 °C" in page.text
    fields = form_fields(page.text)
    edited = client.post(f"/console/products/{GTIN_A_LOTS}", data={**fields, "name": "Organic tee, navy",
                                                                    "language": "en", "care": ""})
    assert edited.status_code == 303
    with world.service.sessions() as session:
        product = session.get(Product, GTIN_A_LOTS)
        assert product is not None and product.name == "Organic tee, navy" and product.care == ""
    refused = client.post("/console/products", data={**form_fields(client.get("/console/products").text),
                                                     "gtin": GTIN_B, "name": "Not mine", "language": "en"})
    assert refused.status_code == 422 and "not under a company prefix" in refused.text


def test_a_brand_gives_a_product_its_category_facility_and_country(world: Any) -> None:
    client = sign_in(world, "brand")
    form = {**form_fields(client.get("/console/products").text), "gtin": GTIN_A_LOTS, "name": "Organic tee",
            "language": "en", "category_code": "28231", "category_name": "Knitted or crocheted garments",
            "facility_gln": "9506000000008", "facility_name": "Porto knitting mill", "production_country": "PT"}
    page = client.get("/console/products").text
    for name in ("category_code", "category_name", "facility_gln", "facility_name", "production_country"):
        assert re.search(rf'<input id="f-{name}" name="{name}" type="text"', page), name
    answer = client.post("/console/products", data=form)
    assert answer.status_code == 303, answer.text
    with world.service.sessions() as session:
        product = session.get(Product, GTIN_A_LOTS)
        assert product is not None
        assert (product.category_code, product.category_name, product.facility_gln, product.facility_name,
                product.production_country) == ("28231", "Knitted or crocheted garments", "9506000000008",
                                                "Porto knitting mill", "PT")
    edit = client.get(answer.headers["location"]).text
    assert 'value="Porto knitting mill"' in edit and 'value="PT"' in edit
    # A code without its name: the write API's rule, next to the code's field, in the form's words.
    refused = client.post(f"/console/products/{GTIN_A_LOTS}", data={**form, **form_fields(edit), "category_name": ""})
    assert refused.status_code == 422
    assert re.search(r'id="e-category_code">“Category code \(UN CPC\)” and “Category” go together<', refused.text)
    assert 'value="Porto knitting mill"' in refused.text  # nothing typed is lost
    country = client.post(f"/console/products/{GTIN_A_LOTS}",
                          data={**form, **form_fields(edit), "production_country": "Portugal"})
    assert country.status_code == 422 and re.search(r'id="e-production_country">[^<]+<', country.text)
    with world.service.sessions() as session:
        product = session.get(Product, GTIN_A_LOTS)
        assert product is not None and product.category_name == "Knitted or crocheted garments"


def test_pages_of_another_role_are_not_found(world: Any) -> None:
    client = sign_in(world, "retailer")
    assert client.get("/console/lots").status_code == 404
    assert client.get("/console/products").status_code == 404


def test_another_brand_neither_sees_nor_changes_a_brands_product_or_lot(world: Any) -> None:
    mine = sign_in(world, "brand")
    form = {**form_fields(mine.get("/console/products").text), "gtin": GTIN_A_LOTS, "name": "Brand A's tee",
            "language": "en"}
    assert mine.post("/console/products", data=form).status_code == 303
    lot = world.lot(grams=3_000)
    other = sign_in(world, "brand_b")
    assert other.get(f"/console/products/{GTIN_A_LOTS}").status_code == 404
    assert GTIN_A_LOTS not in other.get("/console/products").text
    fields = form_fields(other.get("/console/products").text)
    assert other.post(f"/console/products/{GTIN_A_LOTS}", data={**form, **fields, "name": "Taken"}).status_code == 404
    taken = other.post("/console/products", data={**form, **form_fields(other.get("/console/products").text),
                                                  "name": "Taken"})
    assert taken.status_code == 422
    assert re.search(rf'id="e-gtin">GTIN {GTIN_A_LOTS} belongs to another brand<', taken.text)
    assert other.get(f"/console/lots/{lot['lotId']}").status_code == 404
    assert lot["lotNumber"] not in other.get("/console/lots").text
    approve = other.post(f"/console/lots/{lot['lotId']}/approvals",
                         data={**form_fields(other.get("/console/lots").text),
                               "operator": str(world.actor_ids["brand_b"]), "grams": "3000"})
    assert approve.status_code == 404 and "There is no such page" in approve.text
    with world.service.sessions() as session:
        product = session.get(Product, GTIN_A_LOTS)
        assert product is not None and product.name == "Brand A's tee"
    assert '<dd id="left">3,000&nbsp;g</dd>' in mine.get(f"/console/lots/{lot['lotId']}").text
    assert other.get("/console/lots").text.count(lot["lotNumber"]) == 0  # nothing was approved to it


def test_a_recycler_approves_grams_of_its_recovered_lot_to_a_brand(world: Any) -> None:
    recovered = world.lot(role="recycler", gtin=None, code="rCO", grams=2_000, share=10_000)
    recycler = sign_in(world, "recycler")
    page = recycler.get(f"/console/lots/{recovered['lotId']}")
    assert page.status_code == 200 and "Approve grams to a brand" in page.text
    brand_a = str(world.actor_ids["brand"])
    answer = recycler.post(f"/console/lots/{recovered['lotId']}/approvals",
                           data={**form_fields(page.text), "operator": brand_a, "grams": "1500"})
    assert answer.status_code == 303, answer.text
    assert "Brand A: 1,500&nbsp;g" in recycler.get(answer.headers["location"]).text
    brand = sign_in(world, "brand")
    assert recovered["lotNumber"] in brand.get("/console/lots").text  # approved to it: in its list
    assert brand.get(f"/console/lots/{recovered['lotId']}").status_code == 200
    assert sign_in(world, "brand_b").get(f"/console/lots/{recovered['lotId']}").status_code == 404


def test_a_brand_adds_and_removes_a_partner_and_a_stranger_is_told_why(world: Any) -> None:
    from api.actors import add_actor

    with world.service.sessions() as session:
        stranger, key = add_actor(world.service, session, "retailer", world.unique("Shop "),
                                  keys=world.client.app.state.circular.keys)
        stranger_id = stranger.id
    world.keys["stranger"] = key
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    shop = sign_in(world, "stranger")
    sale = shop.post("/console/api/steps", headers={"X-CSRF-Token": re.search(
        r'name="csrf-token" content="([^"]+)"', shop.get("/console/sales").text).group(1)},  # type: ignore[union-attr]
        json={"key": "p" * 20 + world.unique(), "action": "sold",
              "items": [{"gtin": tee["gtin"], "serial": tee["serial"]}]})
    refused = sale.json()["results"][0]
    assert refused["ok"] is False and refused["message"].startswith("This item's brand has not authorised you")
    brand = sign_in(world, "brand")
    page = brand.get("/console/partners")
    assert "Retailer" in page.text and f'value="{stranger_id}"' in page.text
    added = brand.post("/console/partners", data={**form_fields(page.text), "actor": str(stranger_id)})
    assert added.status_code == 303 and added.headers["location"] == "/console/partners?ok=added"
    page = brand.get(added.headers["location"])
    assert re.search(r"<strong>Shop [^<]+</strong>", page.text) and "Partner added." in page.text
    remove_form = re.search(
        rf'<form method="post" action="/console/partners/remove">\s*<input type="hidden" name="csrf" value="([^"]+)">'
        rf'\s*<input type="hidden" name="submission" value="([^"]+)">\s*<input type="hidden" name="actor" '
        rf'value="{stranger_id}">', page.text)
    assert remove_form is not None
    removed = brand.post("/console/partners/remove", data={"csrf": remove_form.group(1),
                                                           "submission": remove_form.group(2),
                                                           "actor": str(stranger_id)})
    assert removed.status_code == 303 and "Partner removed." in brand.get(removed.headers["location"]).text


def test_the_product_form_shows_each_kind_of_field_the_write_api_may_add() -> None:
    """Master data may gain fields (a category from a fixed list, a facility, more images): the form shows each in
    a control that can hold it and reads it back as the write API's input."""
    import enum
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    from api.routes.console.products import form_data, form_values, product_fields
    from api.routes.console.web import TEMPLATES
    from api.schemas import Uri

    class Care(enum.Enum):
        WASH = "wash"
        DRY_CLEAN = "dry_clean"

    class Facility(BaseModel):
        gln: str

    class Master(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = Field(min_length=1, max_length=200)
        description: str = Field("", max_length=5000)
        category: Literal["apparel", "footwear", "textiles"]
        care_kind: Care | None = None
        facility_id: int | None = None
        images: list[Uri] = Field(default_factory=list)
        facility: Facility | None = None

    fields = {f["name"]: f for f in product_fields(Master)}
    assert {n: f["kind"] for n, f in fields.items()} == {
        "name": "text", "description": "textarea", "category": "select", "care_kind": "select",
        "facility_id": "number", "images": "lines", "facility": "hidden"}
    assert fields["category"]["options"] == [("apparel", "Apparel"), ("footwear", "Footwear"),
                                             ("textiles", "Textiles")]
    assert fields["care_kind"]["options"] == [("", "None"), ("wash", "Wash"), ("dry_clean", "Dry clean")]

    html = TEMPLATES.get_template("console/product_form.html").render(
        fields=list(fields.values()), values={"category": "footwear", "images": "https://img.example/a.jpg"},
        errors={"category": "Required."}, csrf="", new_key=lambda: "k")
    assert re.search(r'<select id="f-category" name="category" required\s+aria-describedby="[^"]*e-category"'
                     r'\s+aria-invalid="true">', html)
    assert '<option value="footwear" selected>Footwear</option>' in html
    assert re.search(r'<textarea id="f-images" name="images"[^>]*>https://img.example/a.jpg</textarea>', html)
    assert re.search(r'<input id="f-facility_id" name="facility_id" type="number"', html)
    assert '<input type="hidden" name="facility" value="">' in html

    form = {"name": "Runner", "category": "footwear", "care_kind": "", "facility_id": "42",
            "images": "https://img.example/a.jpg\n\n https://img.example/b.jpg ",
            "facility": '{"gln": "9506000000008"}'}
    data = form_data(list(fields.values()), form)
    assert data == {"name": "Runner", "category": "footwear", "facility_id": "42",
                    "images": ["https://img.example/a.jpg", "https://img.example/b.jpg"],
                    "facility": {"gln": "9506000000008"}}
    saved = Master.model_validate(data)
    assert saved.facility_id == 42 and saved.care_kind is None and saved.facility == Facility(gln="9506000000008")
    shown = form_values(list(fields.values()), saved.model_copy(update={"care_kind": Care.DRY_CLEAN}))
    assert shown["images"] == "https://img.example/a.jpg\nhttps://img.example/b.jpg"
    assert shown["care_kind"] == "dry_clean" and shown["facility_id"] == 42 and shown["category"] == "footwear"
    wrong = form_data(list(fields.values()), {**form, "category": "furniture"})
    with pytest.raises(ValueError, match="category"):
        Master.model_validate(wrong)


def test_roles_without_pages_of_their_own_see_a_home_page_that_says_so(world: Any) -> None:
    for role in ("admin", "repairer", "authority"):
        client = sign_in(world, role)
        home = client.get("/console")
        assert home.status_code == 200
        assert f"There is nothing in the console for your role ({role}) yet." in home.text
        for page in ("/console/products", "/console/lots", "/console/intake", "/console/sales", "/console/flow"):
            assert client.get(page).status_code == 404, (role, page)
