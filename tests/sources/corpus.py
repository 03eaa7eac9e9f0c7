"""A small library of invented documents and questions about them (facts nobody else has),
for the retrieval-quality test and the end-to-end tests."""

from __future__ import annotations

from tests.support.documents import make_docx, make_pdf

RAIL_PAGES = [
    "Tickets. Single tickets can be bought at station machines, on the Orsk Rail app, or from "
    "the conductor for a surcharge of 2 euros. A day pass costs 14 euros and is valid on all "
    "regional lines until 4 a.m. the next morning. Children under six travel free when "
    "accompanied by an adult.",
    "Bicycles. Bicycles are carried free of charge outside the morning rush hour, which runs "
    "from 7 to 9 a.m. on weekdays. Each train has a bicycle carriage marked with a green wheel "
    "symbol. Folding bicycles count as luggage and may be taken on board at any time.",
    "Pets. Small pets in a closed basket travel free. Dogs on a lead need a half-price ticket "
    "and must wear a muzzle during peak hours. Guide dogs always travel free.",
    "Delays and refunds. If your train arrives more than 30 minutes late, you can claim back "
    "25 percent of the ticket price. Delays of over an hour are refunded at 50 percent. Claims "
    "must be filed within 28 days using the refund form on the website.",
    "Lost property. Items left on trains are kept at the lost property office in Orsk Central "
    "for 90 days. The office is open from 10 a.m. to 6 p.m., Monday to Saturday. A handling "
    "fee of 5 euros is charged when an item is returned to its owner.",
    "Accessibility. Every station has step-free access to at least one platform. Wheelchair "
    "users should book assistance 24 hours in advance by calling 0800 555 0199. Ramps are "
    "stored in the first carriage of every train.",
    "Night services. The night line N4 runs between Orsk Central and Pell Harbour every 45 "
    "minutes from midnight to 5 a.m. on Fridays and Saturdays. Night trains have a security "
    "guard on board.",
    "Luggage. Each passenger may bring two suitcases and one piece of hand luggage. Skis and "
    "snowboards are allowed in winter in the racks at the carriage ends. Oversized items such "
    "as furniture are not permitted.",
]

LIBRARY = [
    ("Heading 1", "Danmere Public Library: member guide"),
    ("Heading 2", "Membership"),
    (
        "Normal",
        "Membership is free for residents of Danmere. Visitors can join for 20 euros a year. "
        "A library card is issued on the spot with a photo ID.",
    ),
    ("Heading 2", "Borrowing"),
    (
        "Normal",
        "Members may borrow up to 12 items at once. Books are lent for three weeks; films and "
        "games for one week. Loans can be renewed twice online unless another member has "
        "reserved the item.",
    ),
    ("Heading 2", "Fines"),
    (
        "Normal",
        "Late returns cost 20 cents per item per day, up to a maximum of 6 euros per item. Lost "
        "books are replaced at the list price plus a 3 euro processing fee.",
    ),
    ("PAGE", ""),
    ("Heading 2", "Opening hours"),
    (
        "Normal",
        "The main library opens at 9 a.m. and closes at 8 p.m. from Monday to Friday. On "
        "Saturdays it closes at 4 p.m. It is closed on Sundays and public holidays.",
    ),
    ("Heading 2", "Study rooms"),
    (
        "Normal",
        "Four quiet study rooms can be booked for up to three hours a day. Bookings open seven "
        "days in advance at the front desk or online.",
    ),
    ("Heading 2", "Printing"),
    (
        "Normal",
        "Black and white printing costs 10 cents per page, colour printing 50 cents. Scanning "
        "to email is free.",
    ),
]

KETTLE_FAQ = """# Heron kettles: questions and answers

## Warranty
Every Heron kettle comes with a five year warranty covering the heating element and the
switch. The warranty does not cover limescale damage.

## Descaling
Descale the kettle once a month in hard water areas. Fill it halfway with equal parts white
vinegar and water, boil, and leave it for an hour before rinsing.

## Capacity
The Heron Classic holds 1.7 litres; the Heron Mini holds 0.8 litres. Never fill above the
MAX line.

## Power
The kettle draws 3000 watts and boils a full litre in about two and a half minutes.

## Returns
Unused kettles can be returned within 30 days for a full refund if they are in the original
packaging.

## Cord
The power base has a 75 cm cord that can be wound underneath for storage.
"""

STATIONS = """station,line,platforms,opened,parking
Orsk Central,R1,9,1889,400 spaces
Pell Harbour,R4,3,1902,120 spaces
Danmere,R2,4,1911,80 spaces
Vell Bridge,R1,2,1954,none
Ash Hill,R3,2,1967,45 spaces
"""

GARDEN = """<!doctype html><html><head><title>Orsk Botanical Garden</title></head><body>
<nav><a href="/">Home</a> <a href="/events">Events</a> <a href="/shop">Shop</a></nav>
<main><article><h1>Visiting the Orsk Botanical Garden</h1>
<p>The glasshouse holds 1,200 species of tropical plants, watered by hand every morning.</p>
<p>Entry costs 9 euros for adults; students pay 5 euros and children enter free.</p>
<p>The garden's oldest tree, a cedar, was planted in 1821 by the botanist Mara Leff.</p>
<p>Guided tours start at 11 a.m. every Sunday from the main gate and last ninety minutes.</p>
</article></main><footer>Copyright Orsk Garden Trust. Cookie settings.</footer></body></html>
"""


def documents() -> list[tuple[str, bytes]]:
    return [
        ("orsk-rail-handbook.pdf", make_pdf(RAIL_PAGES, title="Orsk Rail handbook")),
        ("library-guide.docx", make_docx(LIBRARY)),
        ("kettle-faq.md", KETTLE_FAQ.encode()),
        ("stations.csv", STATIONS.encode()),
        ("garden.html", GARDEN.encode()),
    ]


# question -> a phrase of the passage that answers it
QUESTIONS: list[tuple[str, str]] = [
    ("How much does a day pass cost?", "A day pass costs 14 euros"),
    ("Can I buy a ticket from the conductor?", "surcharge of 2 euros"),
    ("Do young children need a train ticket?", "Children under six travel free"),
    ("When can I take my bike on the train?", "outside the morning rush hour"),
    ("Are folding bikes allowed on board at any time?", "Folding bicycles count as luggage"),
    ("Does my dog need a ticket?", "Dogs on a lead need a half-price ticket"),
    ("Do guide dogs travel for free?", "Guide dogs always travel free"),
    ("What refund do I get if my train is 40 minutes late?", "25 percent"),
    ("How long do I have to file a refund claim for a delay?", "within 28 days"),
    ("How long is lost property kept?", "for 90 days"),
    ("What is the fee for getting a lost item back?", "handling fee of 5 euros"),
    ("How do wheelchair users book assistance?", "24 hours in advance"),
    ("Where are the ramps stored on trains?", "Ramps are stored in the first carriage"),
    ("How often does the night line N4 run?", "every 45"),
    ("How many suitcases may a passenger bring?", "two suitcases"),
    ("Can I bring my skis on the train?", "Skis and snowboards"),
    ("How much does library membership cost for visitors?", "20 euros a year"),
    ("How many items can a library member borrow at once?", "up to 12 items"),
    ("How long can I borrow films from the library?", "films and games for one week"),
    ("What is the fine for returning a library book late?", "20 cents per item per day"),
    ("What happens if I lose a library book?", "Lost books are replaced"),
    ("What time does the library close on Saturdays?", "On Saturdays it closes at 4"),
    ("Can I book a study room at the library?", "study rooms can be booked"),
    ("How much does colour printing cost?", "colour printing 50 cents"),
    ("What does the kettle warranty cover?", "five year warranty"),
    ("How do I descale my kettle?", "white vinegar"),
    ("How much water does the Heron Mini hold?", "0.8 litres"),
    ("How many watts does the kettle draw?", "3000 watts"),
    ("Can I return an unused kettle?", "within 30 days"),
    ("How long is the kettle's power cord?", "75 cm cord"),
    ("How many platforms does Pell Harbour station have?", "Pell Harbour; line: R4; platforms: 3"),
    ("When did Vell Bridge station open?", "Vell Bridge; line: R1; platforms: 2; opened: 1954"),
    ("How much does entry to the botanical garden cost?", "Entry costs 9 euros"),
    ("When was the cedar in the botanical garden planted?", "planted in 1821"),
    ("When do guided tours of the garden start?", "Guided tours start at 11"),
]
