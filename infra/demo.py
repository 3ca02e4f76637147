"""The demo district: units, chains, committees, a joint meeting and its tasks.

``seed_demo`` writes about six weeks of history into an empty store through the
application's own use cases, so every event is one a real user could have caused:
the secretariat convenes, issues, urges, verifies; each unit's liaison signs, reports
progress, contributions and completion for its own unit. The history runs on a
``ManualClock`` that starts 45 days before today (district time) and ends yesterday;
deadlines that passed during the history are recorded as overdue when they passed,
and those that passed since are recorded by the deadline watcher at the real now.

The structure is fixed (the same units, tasks and states on every run); only the dates
move with today. The ``tiaokuai demo`` command seeds only an empty store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID

from domain.actor import Actor, Role
from domain.chains import LinkRole
from domain.tasks import SupervisedTask, TaskState
from domain.units import UnitKind
from infra.application import Written
from infra.bootstrap import System
from infra.clock import Clock, ManualClock
from infra.tokens import Principal
from workers.deadline_watcher import DeadlineWatcher

HISTORY_DAYS = 45
"""The history starts this many (local) days before today; day 45 is today."""

DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("social-work", "社会工作部"),
    ("organization", "组织部"),
    ("non-public-economy", "非公工委"),
    ("postal", "邮政管理局"),
    ("commerce", "商务局"),
    ("market-supervision", "市场监管局"),
    ("transport", "交通运输局"),
    ("cyberspace", "网信办"),
    ("public-security", "公安局"),
    ("hr-social-security", "人社局"),
    ("trade-unions", "总工会"),
    ("youth-league", "团区委"),
)
"""The departments (条) of the demo district: slug, name."""

TOWNS: tuple[tuple[str, str], ...] = (
    ("town-chengguan", "城关街道"),
    ("town-longgang", "龙岗街道"),
    ("town-donghu", "东湖街道"),
    ("town-jinqiao", "金桥街道"),
    ("town-shiqiao", "石桥镇"),
    ("town-sanxi", "三溪镇"),
    ("park-logistics", "城南物流园区"),
)
"""The towns, streets and the industrial park (块), all of kind "town"."""

SECRETARIAT_NAME = "联席办 王主任"
AUDITOR_NAME = "区纪委监委 督查室 刘明"
LIAISON_NAMES: dict[str, str] = {
    "postal": "邮政管理局联络员 李晓梅",
    "commerce": "商务局联络员 赵磊",
    "market-supervision": "市场监管局联络员 周敏",
    "transport": "交通运输局联络员 吴刚",
    "cyberspace": "网信办联络员 郑洁",
    "organization": "组织部联络员 冯涛",
    "non-public-economy": "非公工委联络员 蒋雪",
    "public-security": "公安局联络员 杨帆",
    "hr-social-security": "人社局联络员 韩冰",
    "trade-unions": "总工会联络员 朱琳",
    "youth-league": "团区委联络员 秦朗",
    "social-work": "社会工作部联络员 何静",
    "town-chengguan": "城关街道联络员 许亮",
    "town-longgang": "龙岗街道联络员 田甜",
    "town-donghu": "东湖街道联络员 潘越",
    "town-jinqiao": "金桥街道联络员 董洁",
    "town-shiqiao": "石桥镇联络员 余强",
    "town-sanxi": "三溪镇联络员 邹平",
    "park-logistics": "城南物流园区联络员 卢鹏",
}
PRINTED_LIAISONS = ("postal", "commerce", "market-supervision")
"""The liaisons whose tokens the demo prints (with the secretariat's and the auditor's)."""

CHAIN_NAMES: dict[str, str] = {
    "express": "快递物流行业党建工作责任链条",
    "food-delivery": "外卖配送行业党建工作责任链条",
    "ride-hailing": "网约车行业党建工作责任链条",
    "freight": "货运行业党建工作责任链条",
    "new-media": "新媒体行业党建工作责任链条",
}

OVERALL_LEAD_DUTIES = [
    "牵头抓总，统筹本行业新就业群体党建工作",
    "召集联席会议，督办重点任务落实",
    "将行业党建工作成效纳入全区党建考核",
]

Link = tuple[str, LinkRole, str, list[str]]
"""unit, role, responsible person, duties."""

CHAIN_LINKS: dict[str, list[Link]] = {
    "express": [
        ("social-work", LinkRole.OVERALL_LEAD, "陈立新", OVERALL_LEAD_DUTIES),
        (
            "postal",
            LinkRole.INDUSTRY_COMPETENT,
            "周建华",
            [
                "制定快递物流行业党建工作实施方案",
                "成立由主要领导任负责人的工作专班",
                "指导快递企业和末端网点开展党建工作",
            ],
        ),
        (
            "market-supervision",
            LinkRole.SUPERVISORY,
            "孙丽娟",
            [
                "在快递企业登记注册环节同步采集党员信息",
                "配合开展快递企业“两个覆盖”摸排",
                "督促平台企业落实主体责任",
            ],
        ),
        (
            "postal",
            LinkRole.INDUSTRY_COMMITTEE,
            "黄志明",
            [
                "落实快递物流行业党委日常工作",
                "为党员不足3名的企业选派党建指导员",
                "按期报送组织覆盖、工作覆盖情况",
            ],
        ),
        (
            "town-chengguan",
            LinkRole.TERRITORIAL,
            "刘海燕",
            [
                "对辖区快递网点和从业人员开展走访摸排",
                "依托党群服务中心建设“小哥驿站”",
                "组织快递员党员就近参加组织生活",
            ],
        ),
        (
            "town-longgang",
            LinkRole.GRASSROOTS,
            "何志强",
            [
                "龙岗街道快递网点联合党支部落实“三会一课”",
                "设立流动党员报到站点",
                "做好入党积极分子培养和推优入党",
            ],
        ),
    ],
    "food-delivery": [
        ("social-work", LinkRole.OVERALL_LEAD, "陈立新", OVERALL_LEAD_DUTIES),
        (
            "commerce",
            LinkRole.INDUSTRY_COMPETENT,
            "马俊",
            [
                "制定外卖配送行业党建工作实施方案",
                "推动平台企业区域站点建立党组织",
                "联合开展“最美骑手”评选",
            ],
        ),
        (
            "market-supervision",
            LinkRole.SUPERVISORY,
            "孙丽娟",
            [
                "督促外卖平台落实骑手权益保障责任",
                "规范平台企业经营行为",
                "配合摸排外卖配送站点",
            ],
        ),
        (
            "commerce",
            LinkRole.INDUSTRY_COMMITTEE,
            "马俊",
            [
                "筹建并落实外卖配送行业党委日常工作",
                "为党员不足3名的站点选派党建指导员",
                "按期报送组织覆盖、工作覆盖情况",
            ],
        ),
        (
            "town-longgang",
            LinkRole.TERRITORIAL,
            "林志国",
            [
                "对辖区外卖配送站点开展走访摸排",
                "打造“外卖小哥之家”，提供休息、热餐、充电服务",
                "将骑手编入社区网格党组织",
            ],
        ),
        (
            "town-sanxi",
            LinkRole.GRASSROOTS,
            "曹丽",
            [
                "三溪镇外卖站点党支部组织骑手党员集中学习",
                "利用晨会和集中调度时段开展党员教育",
            ],
        ),
    ],
    "ride-hailing": [
        ("social-work", LinkRole.OVERALL_LEAD, "陈立新", OVERALL_LEAD_DUTIES),
        (
            "transport",
            LinkRole.INDUSTRY_COMPETENT,
            "邓永强",
            [
                "制定网约车行业党建工作实施方案",
                "推动网约车平台驻区分支机构组建党组织",
                "评选“文明网约车”",
            ],
        ),
        (
            "market-supervision",
            LinkRole.SUPERVISORY,
            "高建军",
            [
                "监督网约车平台企业依法经营",
                "提供平台企业登记信息，配合党员摸排",
            ],
        ),
        (
            "town-jinqiao",
            LinkRole.TERRITORIAL,
            "郭志远",
            [
                "在网约车聚集区建设“司机之家”",
                "组织司机党员参加属地党组织活动",
            ],
        ),
        (
            "town-chengguan",
            LinkRole.GRASSROOTS,
            "吕春梅",
            [
                "城关街道网约车司机流动党员党支部开展组织生活",
                "收集司机诉求并及时上报",
            ],
        ),
    ],
    "freight": [
        ("social-work", LinkRole.OVERALL_LEAD, "陈立新", OVERALL_LEAD_DUTIES),
        (
            "transport",
            LinkRole.INDUSTRY_COMPETENT,
            "曾德明",
            [
                "制定货运行业党建工作实施方案",
                "摸排货运物流企业和货车司机党员",
                "推动网络货运平台企业建立党组织",
            ],
        ),
        (
            "market-supervision",
            LinkRole.SUPERVISORY,
            "高建军",
            ["比对网络货运平台企业登记信息", "督促平台企业保障货车司机权益"],
        ),
        (
            "park-logistics",
            LinkRole.TERRITORIAL,
            "袁斌",
            [
                "对园区货运物流企业开展走访摸排",
                "在园区设立货车司机流动党员报到站点",
                "建设货车司机“暖心驿站”",
            ],
        ),
        (
            "town-shiqiao",
            LinkRole.GRASSROOTS,
            "熊伟",
            ["石桥镇货运物流联合党支部联系零散货车司机", "做好货车司机党员教育管理"],
        ),
    ],
    "new-media": [
        ("social-work", LinkRole.OVERALL_LEAD, "陈立新", OVERALL_LEAD_DUTIES),
        (
            "cyberspace",
            LinkRole.INDUSTRY_COMPETENT,
            "钟晓燕",
            [
                "制定新媒体行业党建工作实施方案",
                "建立新媒体从业人员和网络主播联系名册",
                "向新媒体企业选派党建指导员",
            ],
        ),
        (
            "market-supervision",
            LinkRole.SUPERVISORY,
            "宋雨",
            ["规范直播电商等新媒体经营行为", "配合摸排新媒体企业"],
        ),
        (
            "town-donghu",
            LinkRole.TERRITORIAL,
            "范志刚",
            ["对辖区新媒体企业和工作室开展走访", "依托党群服务中心开展网络主播党员教育"],
        ),
    ],
}

RESOLUTIONS: tuple[tuple[str, str], ...] = (
    (
        "chains",
        "压实条块责任链条：邮政、商务、交通运输、网信等行业主管部门牵头制定快递物流、外卖配送、"
        "网约车、货运、新媒体行业党建工作实施方案，成立由主要领导任负责人的工作专班。",
    ),
    (
        "coverage",
        "推进“两个覆盖”：对全区新业态企业和站点开展地毯式摸排，为党员不足3名的企业选派党建指导员，"
        "配齐外卖配送、快递物流行业党委班子。",
    ),
    (
        "stations",
        "优化服务阵地：依托镇街党群服务中心建设“小哥驿站”“司机之家”和流动党员报到站点，"
        "打造新就业群体服务圈。",
    ),
    (
        "rights",
        "畅通诉求表达渠道、加强权益保障：开展新就业形态劳动者入会集中行动、职业伤害保障宣传、"
        "交通安全培训和“最美骑手”评选。",
    ),
)
"""The resolutions of the demo meeting: a key the tasks refer to, the text."""


@dataclass(order=True)
class _Step:
    when: datetime
    seq: int
    action: Callable[[], object] = field(compare=False)


@dataclass
class _Tracked:
    """What the seeder remembers of a task, to record overdue without loading it."""

    task_id: UUID
    deadline: datetime
    overdue: bool
    verified: bool


class _Seeder:
    """Plans the demo history as timed steps, then plays them on a manual clock."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.app = system.app
        self.tz = system.settings.tz
        self.today: date = system.clock.now().astimezone(self.tz).date()
        self.start = self.when(0, 9, 0)
        self.clock = ManualClock(self.start)
        self.steps: list[_Step] = []
        self.principals: dict[str, tuple[Principal, str]] = {}
        self.tasks: dict[str, _Tracked] = {}
        self.tracked: dict[UUID, _Tracked] = {}
        self.resolutions: dict[str, str] = {}
        self.extension_requests: dict[str, str] = {}
        self.committees: dict[str, UUID] = {}
        self.links: dict[tuple[str, str, LinkRole], str] = {}
        self.meeting_id: UUID | None = None

    # -------------------------------------------------------------- time
    def when(self, day: int, hour: int, minute: int = 0) -> datetime:
        """Local ``hour:minute`` on history day ``day`` (day 45 is today)."""
        local = self.today - timedelta(days=HISTORY_DAYS - day)
        return datetime.combine(local, time(hour, minute), tzinfo=self.tz)

    def deadline(self, day: int) -> datetime:
        """A deadline: 18:00 local on history day ``day``."""
        return self.when(day, 18, 0)

    def plan(self, day: int, hour: int, minute: int, action: Callable[[], object]) -> None:
        self.steps.append(_Step(self.when(day, hour, minute), len(self.steps), action))

    def play(self) -> None:
        for step in sorted(self.steps):
            self._move_to(step.when)
            step.action()

    def _move_to(self, instant: datetime) -> None:
        """Advance the clock, recording overdue for deadlines passed on the way."""
        if instant < self.clock.now():
            raise RuntimeError("the demo history must move forward in time")
        passed = sorted(
            (t for t in self.tasks.values() if not t.verified and not t.overdue),
            key=lambda t: t.deadline,
        )
        for tracked in passed:
            noticed = max(self.clock.now(), tracked.deadline + timedelta(minutes=1))
            if noticed > instant:
                break
            self.clock.set(noticed)
            self._track(self.app.mark_overdue(task_id=tracked.task_id))
        self.clock.set(instant)

    # -------------------------------------------------------- principals
    def principal(self, role: Role, unit: str | None, name: str) -> Principal:
        key = unit or role.value
        if key not in self.principals:
            self.principals[key] = self.system.tokens.issue(role=role, unit=unit, name=name)
        return self.principals[key][0]

    @property
    def secretariat(self) -> Actor:
        return self.principal(Role.SECRETARIAT, None, SECRETARIAT_NAME).actor

    def liaison(self, unit: str) -> Actor:
        return self.principal(Role.LIAISON, unit, LIAISON_NAMES[unit]).actor

    # ------------------------------------------------------------ tasks
    def _track(self, written: Written[SupervisedTask] | None) -> None:
        if written is None:
            return
        task = written.aggregate
        tracked = self.tracked.get(task.id)
        if tracked is not None:
            tracked.deadline = task.deadline
            tracked.overdue = task.overdue
            tracked.verified = task.is_verified

    def tid(self, key: str) -> UUID:
        return self.tasks[key].task_id

    def issue(
        self,
        key: str,
        at: tuple[int, int, int],
        *,
        title: str,
        industry: str,
        lead: str,
        deadline_day: int,
        weight: float,
        resolution: str | None,
        co_units: tuple[str, ...] = (),
        towns: tuple[str, ...] = (),
        description: str = "",
    ) -> None:
        def action() -> None:
            meeting_id = self.meeting_id if resolution is not None else None
            written = self.app.issue_task(
                title=title,
                description=description,
                industry=industry,
                lead_unit=lead,
                co_units=list(co_units),
                towns=list(towns),
                deadline=self.deadline(deadline_day),
                weight=weight,
                meeting_id=meeting_id,
                resolution_id=self.resolutions[resolution] if resolution else None,
                actor=self.secretariat,
            )
            task = written.aggregate
            tracked = _Tracked(task.id, task.deadline, task.overdue, task.is_verified)
            self.tasks[key] = self.tracked[task.id] = tracked

        self.plan(*at, action)

    def sign(self, key: str, unit: str, at: tuple[int, int, int]) -> None:
        self.plan(
            *at,
            lambda: self._track(self.app.sign_for(task_id=self.tid(key), actor=self.liaison(unit))),
        )

    def progress(
        self, key: str, unit: str, at: tuple[int, int, int], note: str, percent: int
    ) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.report_progress(
                    task_id=self.tid(key), note=note, percent=percent, actor=self.liaison(unit)
                )
            ),
        )

    def contribute(self, key: str, unit: str, at: tuple[int, int, int], note: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.report_contribution(
                    task_id=self.tid(key), note=note, actor=self.liaison(unit)
                )
            ),
        )

    def complete(self, key: str, unit: str, at: tuple[int, int, int], note: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.report_completion(
                    task_id=self.tid(key), note=note, actor=self.liaison(unit)
                )
            ),
        )

    def verify(self, key: str, at: tuple[int, int, int], note: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.verify_task(task_id=self.tid(key), note=note, actor=self.secretariat)
            ),
        )

    def give_back(self, key: str, at: tuple[int, int, int], reason: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.return_task(task_id=self.tid(key), reason=reason, actor=self.secretariat)
            ),
        )

    def urge(self, key: str, at: tuple[int, int, int], note: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.urge_task(task_id=self.tid(key), note=note, actor=self.secretariat)
            ),
        )

    def ask_extension(
        self, key: str, unit: str, at: tuple[int, int, int], new_deadline_day: int, reason: str
    ) -> None:
        def action() -> None:
            written = self.app.request_extension(
                task_id=self.tid(key),
                new_deadline=self.deadline(new_deadline_day),
                reason=reason,
                actor=self.liaison(unit),
            )
            assert written.created_id is not None
            self.extension_requests[key] = written.created_id
            self._track(written)

        self.plan(*at, action)

    def grant(self, key: str, at: tuple[int, int, int], note: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.grant_extension(
                    task_id=self.tid(key),
                    request_id=self.extension_requests[key],
                    note=note,
                    actor=self.secretariat,
                )
            ),
        )

    def deny(self, key: str, at: tuple[int, int, int], reason: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.deny_extension(
                    task_id=self.tid(key),
                    request_id=self.extension_requests[key],
                    reason=reason,
                    actor=self.secretariat,
                )
            ),
        )

    def transfer(self, key: str, at: tuple[int, int, int], new_lead: str, reason: str) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.transfer_lead(
                    task_id=self.tid(key), new_lead=new_lead, reason=reason, actor=self.secretariat
                )
            ),
        )

    def change_co_units(
        self,
        key: str,
        at: tuple[int, int, int],
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        reason: str,
    ) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.change_co_units(
                    task_id=self.tid(key),
                    add=list(add),
                    remove=list(remove),
                    reason=reason,
                    actor=self.secretariat,
                )
            ),
        )

    def change_towns(
        self,
        key: str,
        at: tuple[int, int, int],
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        reason: str,
    ) -> None:
        self.plan(
            *at,
            lambda: self._track(
                self.app.change_towns(
                    task_id=self.tid(key),
                    add=list(add),
                    remove=list(remove),
                    reason=reason,
                    actor=self.secretariat,
                )
            ),
        )


# ---------------------------------------------------------------------- the history
def _plan_directory(s: _Seeder) -> None:
    """Day 0: the units; days 1–2: the chains; day 18, 25: handovers."""
    app = s.app

    def register(slug: str, name: str, kind: UnitKind) -> Callable[[], object]:
        return lambda: app.register_unit(slug=slug, name=name, kind=kind, actor=s.secretariat)

    def establish(industry: str, name: str) -> Callable[[], object]:
        return lambda: app.establish_chain(industry=industry, name=name, actor=s.secretariat)

    for i, (slug, name) in enumerate(DEPARTMENTS):
        s.plan(0, 9, i, register(slug, name, UnitKind.DEPARTMENT))
    for i, (slug, name) in enumerate(TOWNS):
        s.plan(0, 10, i, register(slug, name, UnitKind.TOWN))

    for n, (industry, chain_name) in enumerate(CHAIN_NAMES.items()):
        day, hour = (1, 9 + 2 * n) if n < 3 else (2, 9 + 2 * (n - 3))
        s.plan(day, hour, 0, establish(industry, chain_name))
        for i, (unit, role, person, duties) in enumerate(CHAIN_LINKS[industry]):

            def add_link(
                industry: str = industry,
                unit: str = unit,
                role: LinkRole = role,
                person: str = person,
                duties: list[str] = duties,
            ) -> None:
                written = app.add_chain_link(
                    industry=industry,
                    unit=unit,
                    role=role,
                    responsible_person=person,
                    duties=duties,
                    actor=s.secretariat,
                )
                assert written.created_id is not None
                s.links[(industry, unit, role)] = written.created_id

            s.plan(day, hour, 5 + 8 * i, add_link)

    def hand_over(
        industry: str, unit: str, role: LinkRole, person: str, effective_day: int, reason: str
    ) -> Callable[[], object]:
        return lambda: app.hand_over_link(
            industry=industry,
            link_id=s.links[(industry, unit, role)],
            responsible_person=person,
            effective_at=s.when(effective_day, 9, 0),
            reason=reason,
            actor=s.secretariat,
        )

    s.plan(
        15,
        16,
        30,
        hand_over(
            "food-delivery",
            "commerce",
            LinkRole.INDUSTRY_COMMITTEE,
            "唐文静",
            15,
            "外卖配送行业党委书记唐文静同志经组织部审核到任，行业党委工作由马俊同志移交其负责",
        ),
    )
    s.plan(
        18,
        10,
        0,
        hand_over(
            "express",
            "postal",
            LinkRole.INDUSTRY_COMPETENT,
            "郑国栋",
            17,
            "周建华同志调任市邮政管理局，快递物流行业党建工作由新任分管副局长郑国栋同志接续负责",
        ),
    )
    s.plan(
        25,
        11,
        0,
        hand_over(
            "ride-hailing",
            "town-jinqiao",
            LinkRole.TERRITORIAL,
            "彭静",
            25,
            "金桥街道班子分工调整，网约车属地党建工作改由彭静副主任分管",
        ),
    )


def _plan_committees(s: _Seeder, period_a: str, period_b: str) -> None:
    """Days 3–5: two industry party committees; later recalls, changes and coverage."""
    app = s.app

    def establish(key: str, name: str, industry: str, unit: str) -> Callable[[], object]:
        def action() -> None:
            written = app.establish_committee(
                name=name, industry=industry, supervising_unit=unit, actor=s.secretariat
            )
            s.committees[key] = written.aggregate.id

        return action

    def secretary(key: str, name: str, reason: str) -> Callable[[], object]:
        return lambda: app.appoint_secretary(
            committee_id=s.committees[key], name=name, reason=reason, actor=s.secretariat
        )

    def member(key: str, name: str, enterprise: str) -> Callable[[], object]:
        return lambda: app.admit_member(
            committee_id=s.committees[key], name=name, enterprise=enterprise, actor=s.secretariat
        )

    def instructor(key: str, name: str, enterprise: str, members: int) -> Callable[[], object]:
        return lambda: app.dispatch_instructor(
            committee_id=s.committees[key],
            name=name,
            enterprise=enterprise,
            enterprise_party_members=members,
            actor=s.secretariat,
        )

    def coverage(
        key: str, period: str, figures: tuple[int, int, int, int, int]
    ) -> Callable[[], object]:
        enterprises, organizations, work, members, workers = figures
        return lambda: app.report_coverage(
            committee_id=s.committees[key],
            period=period,
            enterprises=enterprises,
            organizations_covered=organizations,
            work_covered=work,
            party_members=members,
            workers=workers,
            actor=s.secretariat,
        )

    s.plan(3, 9, 30, establish("express", "区快递物流行业党委", "express", "postal"))
    s.plan(
        3,
        10,
        0,
        secretary(
            "express", "黄志明", "经区委社会工作部研究，任命黄志明同志为快递物流行业党委书记"
        ),
    )
    for i, (name, enterprise) in enumerate(
        [
            ("区邮政分公司党总支", "中国邮政集团有限公司区分公司"),
            ("顺捷速运区营业部党支部", "顺捷速运区营业部"),
            ("通达快运分拨中心党支部", "通达快运区域分拨中心"),
            ("城关街道快递网点联合党支部", "城关街道快递网点（7家）"),
        ]
    ):
        s.plan(3, 10, 30 + 5 * i, member("express", name, enterprise))
    s.plan(3, 14, 0, establish("food", "区外卖配送行业党委", "food-delivery", "commerce"))
    for i, (name, enterprise) in enumerate(
        [
            ("飞骑外卖城区运营中心党支部", "飞骑即时配送城区运营中心"),
            ("鲜达到家区域站党支部", "鲜达到家区域配送站"),
            ("即时达配送联合党支部", "即时达同城配送（3个站点）"),
        ]
    ):
        s.plan(3, 14, 30 + 5 * i, member("food", name, enterprise))

    s.plan(4, 9, 30, instructor("express", "张红梅", "极速达快递城关网点", 1))
    s.plan(4, 9, 45, instructor("express", "罗文斌", "云链物流石桥分拨点", 2))
    s.plan(4, 10, 0, instructor("express", "谢婷", "快捷达同城配送站", 0))
    s.plan(4, 10, 30, instructor("food", "邓晓东", "飞骑外卖龙岗配送站", 2))
    s.plan(4, 10, 45, instructor("food", "许丹", "鲜达到家三溪站", 1))
    s.plan(5, 14, 0, coverage("express", period_a, (38, 9, 27, 64, 1260)))
    s.plan(5, 14, 10, coverage("food", period_a, (26, 4, 15, 23, 2140)))

    s.plan(
        15,
        16,
        0,
        secretary("food", "唐文静", "经组织部审核同意，任命唐文静同志为外卖配送行业党委书记"),
    )
    s.plan(
        30,
        10,
        0,
        lambda: app.recall_instructor(
            committee_id=s.committees["express"],
            instructor_id="I2",
            reason="云链物流石桥分拨点党员增至3名并单独组建党支部，指导员任务完成",
            actor=s.secretariat,
        ),
    )
    s.plan(31, 9, 30, member("express", "云链物流石桥分拨点党支部", "云链物流石桥分拨点"))
    s.plan(
        33,
        15,
        0,
        lambda: app.remove_member(
            committee_id=s.committees["food"],
            member_id="M3",
            reason="即时达同城配送区域站点撤并，党员组织关系转入飞骑外卖城区运营中心党支部",
            actor=s.secretariat,
        ),
    )
    s.plan(35, 14, 0, coverage("express", period_b, (41, 12, 33, 71, 1315)))
    s.plan(35, 14, 10, coverage("food", period_b, (27, 6, 21, 29, 2210)))


def _plan_meeting(s: _Seeder) -> None:
    """Day 5: convened; day 7: held, attendance, resolutions, closed."""
    app = s.app

    def convene() -> None:
        written = app.convene_meeting(
            title="区新就业群体党建工作联席会议第一次全体会议",
            held_at=s.when(7, 9, 30),
            actor=s.secretariat,
        )
        s.meeting_id = written.aggregate.id

    def meeting_id() -> UUID:
        assert s.meeting_id is not None
        return s.meeting_id

    s.plan(5, 16, 0, convene)
    absent = {"youth-league", "town-sanxi"}
    present = [slug for slug, _ in DEPARTMENTS + TOWNS if slug not in absent]
    s.plan(
        7,
        9,
        35,
        lambda: app.record_attendance(
            meeting_id=meeting_id(), units=present, actor=s.secretariat, expected_version=None
        ),
    )
    s.plan(
        7,
        9,
        50,
        lambda: app.record_attendance(
            meeting_id=meeting_id(),
            units=["youth-league"],
            actor=s.secretariat,
            expected_version=None,
        ),
    )
    for i, (key, text) in enumerate(RESOLUTIONS):

        def adopt(key: str = key, text: str = text) -> None:
            written = app.adopt_resolution(
                meeting_id=meeting_id(), text=text, actor=s.secretariat, expected_version=None
            )
            assert written.created_id is not None
            s.resolutions[key] = written.created_id

        s.plan(7, 10, 10 + 15 * i, adopt)
    s.plan(
        7,
        11,
        40,
        lambda: app.close_meeting(
            meeting_id=meeting_id(), actor=s.secretariat, expected_version=None
        ),
    )


def _plan_tasks(s: _Seeder) -> None:
    """Day 8 onwards: the supervised tasks, each one story, in every state."""
    f = HISTORY_DAYS  # day f + n is n days from today

    # 1 — verified on time, with co-unit contributions
    k = "express-plan"
    s.issue(
        k,
        (8, 10, 0),
        title="制定快递物流行业党建工作实施方案并成立工作专班",
        industry="express",
        lead="postal",
        co_units=("organization", "non-public-economy"),
        deadline_day=30,
        weight=10,
        resolution="chains",
    )
    s.sign(k, "postal", (8, 15, 20))
    s.sign(k, "organization", (9, 9, 10))
    s.sign(k, "non-public-economy", (9, 10, 30))
    s.progress(k, "postal", (13, 16, 0), "实施方案初稿已完成，正在征求组织部、非公工委意见", 40)
    s.contribute(k, "organization", (16, 11, 0), "提出修改意见6条，明确快递员党员发展工作要求")
    s.contribute(k, "non-public-economy", (17, 9, 40), "补充“两个覆盖”统计口径和摸排表样")
    s.progress(k, "postal", (21, 17, 0), "工作专班已成立，由分管副局长任组长，抽调骨干4名", 80)
    s.complete(k, "postal", (26, 10, 30), "实施方案已印发，工作专班运行，附方案文本和专班名单")
    s.verify(k, (28, 15, 0), "材料齐全，按期完成，同意销号")

    # 2 — verified on time
    k = "food-committee"
    s.issue(
        k,
        (8, 10, 10),
        title="配齐外卖配送行业党委班子并建立议事规则",
        industry="food-delivery",
        lead="commerce",
        co_units=("organization",),
        deadline_day=27,
        weight=8,
        resolution="coverage",
    )
    s.sign(k, "commerce", (8, 16, 40))
    s.sign(k, "organization", (9, 9, 15))
    s.progress(k, "commerce", (12, 15, 0), "党委书记和委员人选已报组织部审核", 50)
    s.contribute(k, "organization", (14, 10, 0), "完成行业党委书记、委员人选审核")
    s.complete(k, "commerce", (20, 17, 10), "行业党委班子已配齐，议事规则已印发")
    s.verify(k, (22, 10, 0), "按期完成，同意销号")

    # 3 — verified on time, with a town
    k = "ride-survey"
    s.issue(
        k,
        (8, 10, 20),
        title="开展网约车平台驻区企业和司机党员摸排",
        industry="ride-hailing",
        lead="transport",
        co_units=("market-supervision",),
        towns=("town-chengguan",),
        deadline_day=29,
        weight=8,
        resolution="coverage",
    )
    s.sign(k, "transport", (9, 8, 50))
    s.sign(k, "market-supervision", (9, 11, 0))
    s.sign(k, "town-chengguan", (10, 9, 0))
    s.progress(k, "transport", (15, 16, 30), "已走访平台企业3家，摸排司机1460名", 60)
    s.contribute(k, "market-supervision", (18, 10, 0), "提供驻区网约车平台企业登记信息5家")
    s.contribute(k, "town-chengguan", (19, 15, 0), "走访辖区网约车聚集点4处，登记司机党员12名")
    s.complete(k, "transport", (26, 16, 0), "摸排完成：驻区平台企业5家、司机2130名、党员41名")
    s.verify(k, (27, 10, 30), "台账清晰，按期完成，同意销号")

    # 4 — overdue, then verified late
    k = "freight-survey"
    s.issue(
        k,
        (8, 10, 30),
        title="摸排货运物流企业和货车司机党员",
        industry="freight",
        lead="transport",
        towns=("park-logistics", "town-shiqiao"),
        deadline_day=20,
        weight=8,
        resolution="coverage",
    )
    s.sign(k, "transport", (9, 9, 0))
    s.sign(k, "park-logistics", (9, 14, 0))
    s.sign(k, "town-shiqiao", (10, 10, 0))
    s.progress(k, "transport", (14, 11, 0), "园区货运企业摸排过半", 50)
    s.contribute(k, "park-logistics", (17, 16, 0), "园区内31家货运物流企业名单和联系人已报送")
    s.urge(k, (19, 10, 0), "距截止仅剩1天，请加快摸排进度")
    s.progress(k, "transport", (22, 9, 30), "石桥镇零散货车司机摸排滞后，正在补充", 85)
    s.contribute(k, "town-shiqiao", (23, 11, 0), "补充登记零散货车司机86名、党员3名")
    s.complete(k, "transport", (24, 15, 0), "摸排完成：货运企业47家、货车司机620名、党员18名")
    s.verify(k, (26, 11, 0), "超期完成，予以销号，超期情况计入考核")

    # 5 — returned after the deadline, reported again, verified late
    k = "media-roster"
    s.issue(
        k,
        (8, 10, 40),
        title="建立新媒体从业人员和网络主播联系名册",
        industry="new-media",
        lead="cyberspace",
        co_units=("non-public-economy",),
        deadline_day=22,
        weight=6,
        resolution="coverage",
    )
    s.sign(k, "cyberspace", (9, 10, 0))
    s.sign(k, "non-public-economy", (10, 9, 30))
    s.progress(k, "cyberspace", (15, 15, 0), "已梳理辖区新媒体企业18家", 60)
    s.complete(k, "cyberspace", (21, 16, 0), "联系名册已建立，共收录新媒体企业18家")
    s.give_back(
        k,
        (23, 9, 30),
        "名册缺少网络主播、自媒体个人从业者，党员身份未逐一核实，请补充后重新报结",
    )
    s.contribute(k, "non-public-economy", (24, 14, 0), "协助核实从业人员党员身份37人")
    s.progress(k, "cyberspace", (25, 10, 0), "已补充网络主播和自媒体个人从业者126名", 90)
    s.complete(k, "cyberspace", (27, 11, 0), "补充完善后重新报结，名册收录企业18家、个人126名")
    s.verify(k, (29, 15, 30), "补充材料符合要求，超期验收销号")

    # 6 — completion reported, awaiting verification; towns contribute
    k = "express-stations"
    s.issue(
        k,
        (8, 10, 50),
        title="在城关街道、龙岗街道建设标准化“小哥驿站”",
        industry="express",
        lead="postal",
        towns=("town-chengguan", "town-longgang"),
        deadline_day=f + 10,
        weight=10,
        resolution="stations",
    )
    s.sign(k, "postal", (9, 9, 20))
    s.sign(k, "town-chengguan", (9, 15, 0))
    s.sign(k, "town-longgang", (10, 9, 40))
    s.progress(k, "postal", (20, 10, 0), "两处驿站完成选址", 30)
    s.contribute(k, "town-chengguan", (28, 15, 0), "依托社区党群服务中心改建驿站1处")
    s.contribute(k, "town-longgang", (33, 10, 0), "协调临街商铺免费提供驿站场地")
    s.progress(k, "postal", (36, 16, 0), "两处驿站完成改造，配齐热水、充电、休息设施", 80)
    s.complete(k, "postal", (43, 10, 0), "两处“小哥驿站”已建成投用，附照片和使用登记")

    # 7 — completion reported, due within a week
    k = "best-riders"
    s.issue(
        k,
        (8, 11, 0),
        title="联合开展“最美骑手”评选活动",
        industry="food-delivery",
        lead="commerce",
        co_units=("market-supervision", "youth-league"),
        deadline_day=f + 5,
        weight=5,
        resolution="rights",
    )
    s.sign(k, "commerce", (9, 10, 10))
    s.sign(k, "market-supervision", (10, 14, 0))
    s.sign(k, "youth-league", (11, 9, 0))
    s.progress(k, "commerce", (25, 15, 0), "各平台推荐候选人32名", 50)
    s.contribute(k, "youth-league", (30, 10, 0), "组织网络投票，参与群众1.2万人次")
    s.contribute(k, "market-supervision", (31, 16, 0), "完成候选人所在平台企业合规审核")
    s.complete(k, "commerce", (42, 15, 30), "评选出“最美骑手”10名，已公示5个工作日")

    # 8 — returned for rework, deadline ahead
    k = "injury-insurance"
    s.issue(
        k,
        (8, 11, 10),
        title="外卖骑手职业伤害保障政策宣传进站点",
        industry="food-delivery",
        lead="hr-social-security",
        co_units=("commerce",),
        towns=("town-longgang",),
        deadline_day=f + 12,
        weight=6,
        resolution="rights",
    )
    s.sign(k, "hr-social-security", (9, 11, 30))
    s.sign(k, "commerce", (10, 9, 0))
    s.sign(k, "town-longgang", (11, 10, 0))
    s.progress(k, "hr-social-security", (22, 16, 0), "已进站点宣讲6场", 50)
    s.contribute(k, "commerce", (26, 10, 0), "协调平台企业在晨会时段组织骑手参加宣讲")
    s.contribute(k, "town-longgang", (27, 15, 0), "在“外卖小哥之家”设置政策宣传专栏")
    s.complete(k, "hr-social-security", (38, 16, 0), "已完成全区外卖站点职业伤害保障政策宣传")
    s.give_back(
        k,
        (40, 10, 0),
        "只有宣传照片，缺少覆盖站点清单和骑手签到表，参保人数未统计，请补充后重新报结",
    )

    # 9 — returned, then overdue, urged
    k = "ride-safety"
    s.issue(
        k,
        (8, 11, 20),
        title="开展网约车司机交通安全专题培训",
        industry="ride-hailing",
        lead="public-security",
        co_units=("transport",),
        deadline_day=41,
        weight=6,
        resolution="rights",
    )
    s.sign(k, "public-security", (10, 10, 0))
    s.sign(k, "transport", (10, 11, 0))
    s.progress(k, "public-security", (20, 15, 0), "培训方案已制定，结合全国交通安全日开展", 30)
    s.contribute(k, "transport", (30, 10, 0), "协调平台企业通知驻区司机参训")
    s.complete(k, "public-security", (39, 17, 0), "已开展交通安全专题培训2场")
    s.give_back(k, (41, 10, 0), "培训覆盖司机不足三成，夜班司机未覆盖，请补充培训后重新报结")
    s.urge(k, (43, 9, 30), "任务已超期，请尽快补充夜班司机培训并重新报结")

    # 10 — in progress, due within a week, urged
    k = "union-drive"
    s.issue(
        k,
        (8, 11, 30),
        title="开展快递员新就业形态劳动者入会集中行动",
        industry="express",
        lead="trade-unions",
        co_units=("postal",),
        towns=("town-donghu",),
        deadline_day=f + 6,
        weight=6,
        resolution="rights",
    )
    s.sign(k, "trade-unions", (9, 14, 30))
    s.sign(k, "postal", (10, 15, 0))
    s.sign(k, "town-donghu", (11, 10, 20))
    s.progress(k, "trade-unions", (24, 16, 0), "已发展快递员入会218名", 40)
    s.contribute(k, "postal", (27, 10, 0), "协调各快递企业在分拨中心设立入会登记点")
    s.progress(k, "trade-unions", (38, 15, 0), "累计发展快递员入会412名", 65)
    s.urge(k, (42, 9, 0), "距截止不足10天，请加快进度")

    # 11 — in progress, deadline further out
    k = "media-training"
    s.issue(
        k,
        (20, 10, 0),
        title="举办新媒体从业人员入党积极分子示范培训班",
        industry="new-media",
        lead="organization",
        co_units=("cyberspace",),
        deadline_day=f + 20,
        weight=5,
        resolution="coverage",
    )
    s.sign(k, "organization", (21, 9, 0))
    s.sign(k, "cyberspace", (21, 10, 30))
    s.progress(k, "organization", (30, 11, 0), "确定培训对象23名，课程方案已拟定", 30)
    s.contribute(k, "cyberspace", (34, 15, 0), "从新媒体企业推荐入党积极分子9名")

    # 12 — in progress, a co-unit added and one removed, due within a week
    k = "freight-station"
    s.issue(
        k,
        (8, 11, 40),
        title="在物流园区设立货车司机流动党员报到站点",
        industry="freight",
        lead="park-logistics",
        co_units=("transport", "public-security"),
        deadline_day=f + 3,
        weight=6,
        resolution="stations",
    )
    s.sign(k, "park-logistics", (9, 16, 0))
    s.sign(k, "transport", (10, 10, 0))
    s.sign(k, "public-security", (12, 9, 0))
    s.progress(k, "park-logistics", (16, 10, 0), "站点选址园区综合服务楼一楼", 30)
    s.change_co_units(
        k,
        (18, 14, 0),
        add=("organization",),
        remove=("public-security",),
        reason="站点设立不涉及治安管理事项，公安局不再配合；流动党员报到登记需组织部指导",
    )
    s.sign(k, "organization", (19, 9, 30))
    s.contribute(k, "organization", (25, 15, 0), "制定流动党员报到登记办法和台账样式")
    s.progress(k, "park-logistics", (35, 16, 0), "站点完成装修，已报到登记货车司机党员27名", 70)

    # 13 — overdue, extension granted (overdue lifted), in progress
    k = "ride-home"
    s.issue(
        k,
        (8, 11, 50),
        title="在网约车聚集区建设“司机之家”",
        industry="ride-hailing",
        lead="transport",
        towns=("town-jinqiao",),
        deadline_day=33,
        weight=8,
        resolution="stations",
    )
    s.sign(k, "transport", (9, 9, 30))
    s.sign(k, "town-jinqiao", (10, 15, 0))
    s.progress(k, "transport", (18, 10, 0), "初选场地2处", 30)
    s.contribute(k, "town-jinqiao", (24, 16, 0), "协调辖区加油站提供场地约80平方米")
    s.ask_extension(
        k,
        "transport",
        (32, 10, 0),
        f + 15,
        "选址加油站需办理消防审批，审批周期约四周",
    )
    s.grant(k, (34, 10, 0), "消防审批确需时间，准予延期一次，请按新期限完成")
    s.progress(k, "transport", (38, 15, 0), "消防审批已受理，室内改造同步推进", 55)

    # 14 — signed; towns changed (one added, one removed)
    k = "rider-pioneer"
    s.issue(
        k,
        (28, 10, 0),
        title="外卖站点设立党员先锋岗，推动骑手党员亮身份",
        industry="food-delivery",
        lead="commerce",
        towns=("town-longgang", "town-donghu"),
        deadline_day=f + 8,
        weight=5,
        resolution="coverage",
    )
    s.change_towns(
        k,
        (30, 10, 0),
        add=("town-sanxi",),
        remove=("town-donghu",),
        reason="东湖街道辖区无外卖配送站点，属地调整为三溪镇",
    )
    s.sign(k, "commerce", (40, 11, 0))
    s.sign(k, "town-longgang", (41, 9, 30))

    # 15 — signed, due within a week
    k = "youth-home"
    s.issue(
        k,
        (36, 10, 0),
        title="建设新媒体从业青年“网上青年之家”",
        industry="new-media",
        lead="youth-league",
        co_units=("cyberspace",),
        deadline_day=f + 4,
        weight=4,
        resolution="rights",
    )
    s.sign(k, "youth-league", (43, 9, 0))

    # 16 — issued, a co-unit signed, the lead not yet
    k = "instructor-review"
    s.issue(
        k,
        (43, 15, 0),
        title="快递末端网点党建指导员全覆盖复核",
        industry="express",
        lead="postal",
        co_units=("non-public-economy",),
        towns=("town-shiqiao",),
        deadline_day=f + 14,
        weight=5,
        resolution="coverage",
    )
    s.sign(k, "non-public-economy", (44, 10, 0))

    # 17 — issued yesterday, not from the meeting
    k = "truck-warmth"
    s.issue(
        k,
        (44, 10, 30),
        title="货车司机“暖心驿站”服务保障",
        description="区委督查室交办：在物流园区和三溪镇货运集散点设置“暖心驿站”，"
        "提供休息、饮水、充电服务。",
        industry="freight",
        lead="transport",
        towns=("park-logistics", "town-sanxi"),
        deadline_day=f + 21,
        weight=4,
        resolution=None,
    )

    # 18 — lead transferred (with reason), former lead becomes a co-unit, in progress
    k = "rider-grievance"
    s.issue(
        k,
        (8, 12, 0),
        title="建立外卖骑手劳动权益诉求快速响应机制",
        industry="food-delivery",
        lead="market-supervision",
        co_units=("trade-unions",),
        deadline_day=f + 9,
        weight=8,
        resolution="rights",
    )
    s.sign(k, "market-supervision", (9, 10, 40))
    s.sign(k, "trade-unions", (10, 16, 0))
    s.progress(k, "market-supervision", (14, 15, 0), "已梳理平台投诉举报渠道", 20)
    s.transfer(
        k,
        (16, 10, 0),
        "hr-social-security",
        "骑手劳动权益诉求调处属人社局劳动保障监察职能，经联席办协调改由人社局牵头，"
        "市场监管局转为配合",
    )
    s.change_co_units(k, (16, 10, 5), add=("market-supervision",), reason="原牵头单位转为配合")
    s.sign(k, "hr-social-security", (17, 9, 0))
    s.progress(k, "hr-social-security", (25, 16, 0), "联合总工会设立骑手劳动争议调解室", 45)
    s.contribute(k, "market-supervision", (28, 10, 0), "共享平台企业投诉举报数据")
    s.contribute(k, "trade-unions", (29, 15, 0), "派驻调解员2名")
    s.progress(k, "hr-social-security", (39, 16, 0), "已调处骑手诉求17件", 70)

    # 19 — urged, overdue, still in progress
    k = "express-ledger"
    s.issue(
        k,
        (8, 12, 10),
        title="报送快递企业“两个覆盖”摸排台账",
        industry="express",
        lead="postal",
        co_units=("market-supervision",),
        deadline_day=36,
        weight=8,
        resolution="coverage",
    )
    s.sign(k, "postal", (9, 9, 25))
    s.sign(k, "market-supervision", (11, 10, 0))
    s.contribute(k, "market-supervision", (15, 10, 0), "提供快递企业登记注册信息41家")
    s.progress(k, "postal", (22, 16, 0), "城区快递网点摸排完成", 50)
    s.urge(k, (33, 9, 0), "距截止仅剩3天，进度仅过半，请加快")
    s.urge(k, (38, 9, 0), "已超期2天，请说明原因并报送整改计划")
    s.progress(k, "postal", (39, 15, 0), "乡镇快递网点摸排滞后，预计一周内完成", 75)

    # 20 — extension denied, overdue, urged, in progress
    k = "ride-party-org"
    s.issue(
        k,
        (8, 12, 20),
        title="推动网约车平台企业驻区分支机构组建党组织",
        industry="ride-hailing",
        lead="transport",
        co_units=("non-public-economy",),
        deadline_day=38,
        weight=10,
        resolution="chains",
    )
    s.sign(k, "transport", (9, 9, 40))
    s.sign(k, "non-public-economy", (10, 11, 30))
    s.progress(k, "transport", (20, 16, 0), "已与2家平台企业对接组建事宜", 30)
    s.ask_extension(
        k,
        "transport",
        (36, 10, 0),
        f + 20,
        "平台企业党员组织关系转接需上级党组织审批",
    )
    s.deny(
        k,
        (37, 10, 30),
        "组建工作已纳入新兴领域百日攻坚，不予延期；请按期完成并报送进展",
    )
    s.urge(k, (40, 9, 0), "已超期，请立即报送组建进展")
    s.progress(k, "transport", (42, 16, 0), "1家平台企业已提交组建申请", 50)

    # 21 — never signed by the lead, urged, deadline passed yesterday
    k = "media-instructors"
    s.issue(
        k,
        (20, 10, 30),
        title="向新媒体企业选派党建指导员",
        industry="new-media",
        lead="cyberspace",
        co_units=("organization",),
        towns=("town-donghu",),
        deadline_day=44,
        weight=6,
        resolution="coverage",
    )
    s.sign(k, "organization", (21, 9, 20))
    s.sign(k, "town-donghu", (22, 10, 0))
    s.urge(k, (38, 9, 30), "网信办尚未签收，请立即签收并组织落实")
    s.urge(k, (43, 9, 30), "明日到期，网信办仍未签收，请立即签收")

    # 22 — extension pending, due within a week
    k = "freight-platform"
    s.issue(
        k,
        (22, 10, 0),
        title="网络货运平台企业登记信息与党员信息比对",
        industry="freight",
        lead="market-supervision",
        co_units=("transport",),
        deadline_day=f + 2,
        weight=5,
        resolution="coverage",
    )
    s.sign(k, "market-supervision", (23, 9, 0))
    s.sign(k, "transport", (23, 14, 0))
    s.progress(k, "market-supervision", (30, 11, 0), "已导出驻区网络货运平台企业登记数据", 40)
    s.contribute(k, "transport", (33, 15, 0), "提供网络货运经营许可企业名单")
    s.ask_extension(
        k,
        "market-supervision",
        (43, 16, 0),
        f + 16,
        "网络货运平台司机数据尚未向区级共享，需协调市级数据接口",
    )


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def seed_demo(system: System) -> list[str]:
    """Seed the demo district into an empty store; return the lines to print."""
    seeder = _Seeder(system)
    first_day = seeder.start.astimezone(seeder.tz).date()
    period_b = _month(first_day)  # reported on day 35, after that month has ended
    period_a = _month(first_day.replace(day=1) - timedelta(days=1))

    # The printed principals first, in the order they are printed.
    seeder.principal(Role.SECRETARIAT, None, SECRETARIAT_NAME)
    seeder.principal(Role.AUDITOR, None, AUDITOR_NAME)
    for unit in PRINTED_LIAISONS:
        seeder.liaison(unit)

    _plan_directory(seeder)
    _plan_committees(seeder, period_a, period_b)
    _plan_meeting(seeder)
    _plan_tasks(seeder)

    app_clock: Clock = system.app.clock
    system_clock: Clock = system.clock
    system.app.clock = seeder.clock
    system.clock = seeder.clock
    try:
        seeder.play()
    finally:
        system.app.clock = app_clock
        system.clock = system_clock

    # Deadlines passed since the history ended are recorded now, by the watcher; a
    # last look at the aggregates covers a bus deployment whose views lag behind.
    DeadlineWatcher(system).tick()
    for tracked in seeder.tasks.values():
        if not tracked.verified and tracked.deadline <= system.app.now():
            system.app.mark_overdue(task_id=tracked.task_id)
    if system.settings.bus is None:
        system.catch_up()
    return _summary(seeder, first_day)


def _summary(seeder: _Seeder, first_day: date) -> list[str]:
    app = seeder.app
    tasks = [app.task(t.task_id) for t in seeder.tasks.values()]
    states = Counter(task.state for task in tasks)
    verified = [task for task in tasks if task.is_verified]
    late = sum(1 for task in verified if task.verified_at and task.verified_at > task.deadline)
    overdue = sum(1 for task in tasks if task.overdue and not task.is_verified)
    chains = [app.chain(industry) for industry in CHAIN_LINKS]
    links = sum(len(chain.links) for chain in chains)
    handovers = sum(len(link["handovers"]) for chain in chains for link in chain.links.values())
    committees = [app.committee(cid) for cid in seeder.committees.values()]
    members = sum(m["active"] for c in committees for m in c.members.values())
    instructors = sum(i["active"] for c in committees for i in c.instructors.values())
    recalled = sum(not i["active"] for c in committees for i in c.instructors.values())
    by_state = ", ".join(f"{state.value} {states.get(state, 0)}" for state in TaskState)
    settings = seeder.system.settings
    lines = [
        f"Seeded the demo district, history from {first_day.isoformat()} to today:",
        f"  units: {len(DEPARTMENTS) + len(TOWNS)} "
        f"({len(DEPARTMENTS)} departments, {len(TOWNS)} towns/streets/park)",
        f"  responsibility chains: {len(chains)} ({links} links, {handovers} handovers)",
        f"  industry party committees: {len(committees)} ({members} member organizations, "
        f"{instructors} instructors on duty, {recalled} recalled)",
        f"  joint meetings: 1 ({len(seeder.resolutions)} resolutions)",
        f"  tasks: {len(tasks)} — {by_state}",
        f"         verified on time {len(verified) - late}, verified late {late}; "
        f"overdue now {overdue}",
        "",
        "Principals (role, unit, name, bearer token):",
    ]
    printed = [Role.SECRETARIAT.value, Role.AUDITOR.value, *PRINTED_LIAISONS]
    for key in printed:
        principal, token = seeder.principals[key]
        lines.append(
            f"  {principal.role.value:<12} {principal.unit or '-':<20} {principal.name}  {token}"
        )
    lines.append("")
    lines.append(
        "Other units' liaisons: tiaokuai token issue --role liaison --unit <slug> --name <name>"
    )
    lines.append(f"Open http://{settings.host}:{settings.port}/docs and use a token with Authorize")
    return lines
