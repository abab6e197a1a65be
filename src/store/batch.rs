//! One write batch, decided in memory and then written once.
//!
//! For each job, in order: the idempotency check, then the facts its rules need — from this
//! batch's overlay (what earlier jobs of the batch decided), then the writer's cache, then one
//! indexed read — then the pure ledger rules ([`crate::ledger::rules`]), then ids, `posted_at`,
//! the posting sequence and the hash-chain link, and the rows to add. A refused job changes
//! nothing: its state lives in job-local copies until it is accepted, so the batch needs no
//! SAVEPOINT. Every SQL read happens before the batch writes anything, so each read sees
//! committed state only. [`Batch::write`] then adds every row with a few multi-row statements.
//! The overlay reaches the writer's cache only after COMMIT ([`Batch::into_committed`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use time::Date;

use crate::clock::{Sources, format_date, format_timestamp};
use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::commands::{Command, EventType, PeriodClose};
use crate::ledger::ids::{BorrowerId, EntryId, EventId, LoanId, TenantId};
use crate::ledger::journal::{JournalEntry, JournalLine};
use crate::ledger::loan::{FIELDS, LoanBalances};
use crate::ledger::money::{Currency, Money};
use crate::ledger::receipts::{
    AccrualReceipt, AdjustmentReceipt, ChargeOffReceipt, ChargedOff, DisbursementReceipt,
    FeeReceipt, PaymentReceipt, PeriodCloseReceipt, Receipt, ReturnReceipt, ReversalReceipt,
    SettlementReceipt, WaiverReceipt,
};
use crate::ledger::rules::{self, AccrualFacts, Decision, Outcome, PostedEvent, Standing};
use crate::ledger::state::{GlTotals, LoanState};
use crate::ledger::trial_balance::{ClosingBalances, TrialBalance};
use crate::store::StoreError;
use crate::store::cache::{TenantState, WriterCache};
use crate::store::chain::{self, ChainedEntry, ChainedLine};
use crate::store::rows::{
    AccrualLineRow, BalanceRow, BatchRows, EntryRow, EventRow, IdempotencyRow, LineRow,
    LoanEntryRow, LoanRow, OutboxRow, PeriodCloseRow, TenantRow,
};
use crate::store::trial_balance;
use crate::store::writer::{WriteOutcome, WriteRequest};

/// SHA-256 of route and canonical body: what "the same request" means for idempotency.
pub(crate) fn fingerprint(route: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    h.update(route.as_bytes());
    h.update([0]);
    h.update(payload.as_bytes());
    hex::encode(h.finalize())
}

/// A loan touched by this batch: its state, when it was last touched, and whether the batch
/// opened it.
#[derive(Debug, Clone)]
struct TouchedLoan {
    state: LoanState,
    last_activity_at: String,
    opened_at: Option<String>,
}

/// One batch: the overlay of decided state and the rows to write.
pub(crate) struct Batch<'a> {
    conn: &'a Connection,
    cache: &'a mut WriterCache,
    sources: &'a Sources,
    retention: Duration,
    next_entry_seq: i64,
    tenants: HashMap<TenantId, TenantState>,
    touched_gl: HashSet<(TenantId, crate::ledger::state::GlKey)>,
    loans: HashMap<(TenantId, LoanId), TouchedLoan>,
    answers: HashMap<(TenantId, String), (String, Vec<u8>)>,
    external_refs: HashSet<(TenantId, String)>,
    accrued: HashSet<(TenantId, LoanId, Date)>,
    /// Events posted by this batch, by their entry.
    entries: HashMap<(TenantId, EntryId), PostedEvent>,
    /// The entry of each event posted by this batch.
    event_entries: HashMap<(TenantId, EventId), EntryId>,
    /// Entries of this batch acting on an earlier event (settlements, returns, waivers).
    dependents: HashMap<(TenantId, EventId), Vec<EntryId>>,
    /// Recoveries posted by this batch, per loan.
    recoveries: HashMap<(TenantId, LoanId), Vec<EntryId>>,
    /// Entries reversed by this batch (committed ones included).
    reversed: HashSet<(TenantId, EntryId)>,
    rows: BatchRows,
}

/// What one accepted job adds to the overlay.
struct Accepted {
    tenant: TenantId,
    tenant_state: TenantState,
    new_tenant: bool,
    gl_keys: Vec<crate::ledger::state::GlKey>,
    loans: HashMap<LoanId, LoanState>,
    opened: Option<LoanId>,
    entry_id: EntryId,
    posted: PostedEvent,
    subject: Option<EventId>,
}

impl<'a> Batch<'a> {
    /// A new, empty batch whose first entry gets posting sequence `next_entry_seq`.
    pub(crate) fn new(
        conn: &'a Connection,
        cache: &'a mut WriterCache,
        sources: &'a Sources,
        retention: Duration,
        next_entry_seq: i64,
    ) -> Self {
        Batch {
            conn,
            cache,
            sources,
            retention,
            next_entry_seq,
            tenants: HashMap::new(),
            touched_gl: HashSet::new(),
            loans: HashMap::new(),
            answers: HashMap::new(),
            external_refs: HashSet::new(),
            accrued: HashSet::new(),
            entries: HashMap::new(),
            event_entries: HashMap::new(),
            dependents: HashMap::new(),
            recoveries: HashMap::new(),
            reversed: HashSet::new(),
            rows: BatchRows::default(),
        }
    }

    /// The posting sequence the next batch starts at, once this one commits.
    pub(crate) fn next_entry_seq(&self) -> i64 {
        self.next_entry_seq
    }

    /// Decides one job: a replay, a refusal, or a new entry whose rows join the batch.
    pub(crate) fn execute(
        &mut self,
        req: &WriteRequest,
        fingerprint: &str,
    ) -> Result<WriteOutcome, StoreError> {
        let now = self.sources.clock.now();
        if let Some(replay) = self.earlier_answer(req, fingerprint, now.unix_timestamp())? {
            return replay;
        }
        if let Command::ClosePeriod(c) = &req.command {
            return self.close_period(req, c, fingerprint.to_owned(), now);
        }
        let (mut tenant_state, new_tenant) = self.tenant_state(req.tenant)?;
        rules::check_open(tenant_state.lock_date, &req.command)?;
        // An overflow the rules met (an entry whose debits would leave `i64`) names the
        // request field whose amount caused it.
        let (decision, mut loans) =
            self.decide(req, tenant_state.lock_date)
                .map_err(|e| match e {
                    StoreError::Ledger(l) => {
                        StoreError::Ledger(l.at_field(req.command.amount_field()))
                    }
                    other => other,
                })?;
        let gl_keys = rules::apply(
            &decision,
            &mut loans,
            &mut tenant_state.gl,
            req.command.amount_field(),
        )?;
        let posted_at = format_timestamp(now);
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let event_id = EventId::from_uuid(self.sources.ids.new_id());
        let entry_id = EntryId::from_uuid(self.sources.ids.new_id());
        let receipt = receipt(&decision, event_id, entry_id, &posted_at);
        let body = serde_json::to_vec(&receipt).map_err(|e| StoreError::failed("answer", e))?;
        self.add_rows(
            req,
            &decision,
            &mut tenant_state,
            Ids {
                event_id,
                entry_id,
                posted_at: &posted_at,
                now_ms,
            },
        );
        self.push_idempotency(req, fingerprint, &body, now, &posted_at);
        let posted = PostedEvent {
            event_id,
            event_type: decision.event_type,
            effective_at: decision.effective_at,
            entry: decision.entry.clone(),
            reversed: false,
        };
        self.accept(
            req,
            Accepted {
                tenant: req.tenant,
                tenant_state,
                new_tenant,
                gl_keys,
                loans,
                opened: decision.opens.map(|(id, _)| id),
                entry_id,
                posted,
                subject: decision.subject,
            },
            &posted_at,
        );
        self.answers.insert(
            (req.tenant, req.idempotency_key.clone()),
            (fingerprint.to_owned(), body.clone()),
        );
        Ok(WriteOutcome::Created(body))
    }

    /// A period close: refused unless its day is past and after the lock date; otherwise the
    /// trial balance of every currency the tenant uses as of that day — committed lines plus
    /// this batch's — is stored with the close, and the lock date moves (for the rest of this
    /// batch too). It posts no entry and sends no webhook.
    fn close_period(
        &mut self,
        req: &WriteRequest,
        c: &PeriodClose,
        fingerprint: String,
        now: time::OffsetDateTime,
    ) -> Result<WriteOutcome, StoreError> {
        let (mut tenant_state, new_tenant) = self.tenant_state(req.tenant)?;
        rules::close_period(tenant_state.lock_date, now.date(), c)?;
        let tenant_s = req.tenant.to_string();
        let through = format_date(c.through_date);
        let mut totals = trial_balance::totals_as_of(self.conn, &tenant_s, &through)?;
        for line in self
            .rows
            .lines
            .iter()
            .filter(|l| l.tenant_id == tenant_s && l.effective_at <= through)
        {
            let (Some(account), Some(currency)) = (
                Account::from_code(line.account_code),
                Currency::parse(&line.currency),
            ) else {
                continue;
            };
            let amount = i128::from(line.amount_minor);
            let (dr, cr) = if line.direction == "DR" {
                (amount, 0)
            } else {
                (0, amount)
            };
            totals.entry(currency).or_default().push((account, dr, cr));
        }
        let trial_balance: Vec<ClosingBalances> = tenant_state
            .gl
            .currencies()
            .into_iter()
            .map(|cur| {
                TrialBalance::from_totals(cur, totals.remove(&cur).unwrap_or_default()).closing()
            })
            .collect();
        let closed_at = format_timestamp(now);
        let receipt = PeriodCloseReceipt {
            period_close_id: self.sources.ids.new_id(),
            through_date: through.clone(),
            closed_at: closed_at.clone(),
            trial_balance,
        };
        let body = serde_json::to_vec(&receipt).map_err(|e| StoreError::failed("answer", e))?;
        let stored = serde_json::to_string(&receipt.trial_balance)
            .map_err(|e| StoreError::failed("trial balance", e))?;
        self.rows.period_closes.push(PeriodCloseRow {
            period_close_id: receipt.period_close_id.to_string(),
            tenant_id: tenant_s.clone(),
            through_date: through,
            closed_at: closed_at.clone(),
            actor: req.actor.clone(),
            metadata: req.metadata.clone(),
            trial_balance: stored,
        });
        self.push_idempotency(req, &fingerprint, &body, now, &closed_at);
        if new_tenant {
            self.rows.tenants.push(TenantRow {
                tenant_id: tenant_s,
                created_at: closed_at,
            });
        }
        tenant_state.lock_date = Some(c.through_date);
        self.tenants.insert(req.tenant, tenant_state);
        self.answers.insert(
            (req.tenant, req.idempotency_key.clone()),
            (fingerprint, body.clone()),
        );
        Ok(WriteOutcome::Created(body))
    }

    /// The idempotency row of an accepted job.
    fn push_idempotency(
        &mut self,
        req: &WriteRequest,
        fingerprint: &str,
        body: &[u8],
        now: time::OffsetDateTime,
        created_at: &str,
    ) {
        self.rows.idempotency.push(IdempotencyRow {
            tenant_id: req.tenant.to_string(),
            key: req.idempotency_key.clone(),
            route: req.route,
            fingerprint: fingerprint.to_owned(),
            body: body.to_vec(),
            created_at: created_at.to_owned(),
            expires_at: now
                .unix_timestamp()
                .saturating_add(i64::try_from(self.retention.as_secs()).unwrap_or(i64::MAX)),
        });
    }

    /// A replay or mismatch of an answer given before (in this batch or committed), or `None`
    /// for a new key. An expired committed key is deleted with the batch and counts as new.
    fn earlier_answer(
        &mut self,
        req: &WriteRequest,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<Result<WriteOutcome, StoreError>>, StoreError> {
        let judge = |stored: &str, body: Vec<u8>| {
            if stored == fingerprint {
                Ok(WriteOutcome::Replayed(body))
            } else {
                Err(StoreError::IdempotencyMismatch)
            }
        };
        let key = (req.tenant, req.idempotency_key.clone());
        if let Some((stored, body)) = self.answers.get(&key) {
            return Ok(Some(judge(stored, body.clone())));
        }
        let tenant = req.tenant.to_string();
        let existing: Option<(String, Vec<u8>, i64)> = self
            .conn
            .prepare_cached(
                "SELECT fingerprint, response_body, expires_at FROM idempotency_keys \
                 WHERE tenant_id = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![tenant, req.idempotency_key], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        match existing {
            Some((stored, body, expires_at)) if expires_at > now => Ok(Some(judge(&stored, body))),
            Some(_) => {
                self.rows
                    .expired_keys
                    .push((tenant, req.idempotency_key.clone()));
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The tenant's state as this batch sees it (loaded once if cold), and whether it is new.
    fn tenant_state(&mut self, tenant: TenantId) -> Result<(TenantState, bool), StoreError> {
        if let Some(t) = self.tenants.get(&tenant) {
            return Ok((t.clone(), false));
        }
        if let Some(t) = self.cache.tenant(tenant) {
            return Ok((t.clone(), false));
        }
        match load_tenant(self.conn, tenant)? {
            Some(t) => {
                self.cache.put_tenant(tenant, t.clone());
                Ok((t, false))
            }
            None => Ok((
                TenantState {
                    chain_head: chain::GENESIS.to_owned(),
                    gl: GlTotals::default(),
                    lock_date: None,
                },
                true,
            )),
        }
    }

    /// A loan as this batch sees it: overlay, then cache, then one indexed read.
    fn loan(&mut self, tenant: TenantId, loan: LoanId) -> Result<Option<LoanState>, StoreError> {
        if let Some(t) = self.loans.get(&(tenant, loan)) {
            return Ok(Some(t.state));
        }
        if let Some(s) = self.cache.loan(tenant, loan) {
            return Ok(Some(s));
        }
        let loaded = load_loan(self.conn, tenant, loan)?;
        if let Some(s) = loaded {
            self.cache.put_loan(tenant, loan, s);
        }
        Ok(loaded)
    }

    /// Gathers the facts the command's rules need and asks them; returns the decision and the
    /// current state of every loan it touches.
    fn decide(
        &mut self,
        req: &WriteRequest,
        lock: Option<Date>,
    ) -> Result<(Decision, HashMap<LoanId, LoanState>), StoreError> {
        let t = req.tenant;
        let mut loans = HashMap::new();
        let decision = match &req.command {
            Command::Disburse(d) => {
                let loan = self.loan(t, d.loan_id)?;
                rules::disburse(loan.as_ref(), d)?
            }
            Command::Pay(p) => {
                let loan = self.loan(t, p.loan_id)?;
                let taken = match &p.external_ref {
                    Some(r) => self.external_ref_taken(t, r)?,
                    None => false,
                };
                rules::pay(loan.as_ref(), p, taken)?
            }
            Command::AssessFee(f) => {
                let loan = self.loan(t, f.loan_id)?;
                rules::assess_fee(loan.as_ref(), f)?
            }
            Command::Accrue(a) => {
                let mut states = Vec::with_capacity(a.loans.len());
                let mut accrued = Vec::with_capacity(a.loans.len());
                let date = format_date(a.accrual_date);
                for item in &a.loans {
                    states.push(self.loan(t, item.loan_id)?);
                    accrued.push(self.already_accrued(t, item.loan_id, a.accrual_date, &date)?);
                }
                let facts: Vec<AccrualFacts<'_>> = states
                    .iter()
                    .zip(&accrued)
                    .map(|(loan, already)| AccrualFacts {
                        loan: loan.as_ref(),
                        already_accrued: *already,
                    })
                    .collect();
                rules::accrue(a, &facts)?
            }
            Command::Reverse(r) => {
                let original = self.original(t, r.reverses_entry_id)?;
                let standing = match &original {
                    Some(o) => self.standing(t, o)?,
                    None => Standing::default(),
                };
                rules::reverse(original.as_ref(), standing, lock, r)?
            }
            Command::Settle(st) => {
                let (event, standing) = self.subject(t, st.disbursement_event_id)?;
                rules::settle(event.as_ref(), standing, st)?
            }
            Command::ReturnPayment(r) => {
                let (event, standing) = self.subject(t, r.payment_event_id)?;
                let loan = self.loan_of(t, event.as_ref())?;
                rules::return_payment(event.as_ref(), standing, loan.as_ref(), r)?
            }
            Command::WaiveFee(w) => {
                let (event, standing) = self.subject(t, w.fee_event_id)?;
                let loan = self.loan_of(t, event.as_ref())?;
                rules::waive_fee(event.as_ref(), standing, loan.as_ref(), w)?
            }
            Command::ChargeOff(c) => {
                let loan = self.loan(t, c.loan_id)?;
                rules::charge_off(loan.as_ref(), c)?
            }
            Command::Adjust(a) => rules::adjust(a)?,
            Command::ClosePeriod(_) => {
                return Err(StoreError::Invalid(
                    "a period close posts no journal entry".into(),
                ));
            }
        };
        for id in decision.loans() {
            if decision.opens.is_some_and(|(opened, _)| opened == id) {
                continue;
            }
            let state = self.loan(t, id)?.ok_or(LedgerError::LoanNotFound(id))?;
            loans.insert(id, state);
        }
        Ok((decision, loans))
    }

    fn external_ref_taken(&self, tenant: TenantId, external_ref: &str) -> Result<bool, StoreError> {
        if self
            .external_refs
            .contains(&(tenant, external_ref.to_owned()))
        {
            return Ok(true);
        }
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE tenant_id = ?1 AND external_ref = ?2")?
            .exists(params![tenant.to_string(), external_ref])?)
    }

    fn already_accrued(
        &self,
        tenant: TenantId,
        loan: LoanId,
        date: Date,
        date_text: &str,
    ) -> Result<bool, StoreError> {
        if self.accrued.contains(&(tenant, loan, date)) {
            return Ok(true);
        }
        // Committed accruals of that date not reversed, neither committed nor in this batch.
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.entry_id FROM accrual_lines a WHERE a.tenant_id = ?1 AND a.loan_id = ?2 AND a.accrual_date = ?3 \
             AND NOT EXISTS (SELECT 1 FROM journal_entries r WHERE r.reverses_entry_id = a.entry_id)",
        )?;
        let mut rows = stmt.query(params![tenant.to_string(), loan.to_string(), date_text])?;
        while let Some(r) = rows.next()? {
            let entry = EntryId::parse(&r.get::<_, String>(0)?)
                .ok_or_else(|| StoreError::corrupt("accrual_lines.entry_id"))?;
            if !self.reversed.contains(&(tenant, entry)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The entry a reversal names: posted earlier in this batch, or committed.
    fn original(
        &self,
        tenant: TenantId,
        entry: EntryId,
    ) -> Result<Option<PostedEvent>, StoreError> {
        let mut posted = match self.entries.get(&(tenant, entry)) {
            Some(e) => Some(e.clone()),
            None => load_posted(self.conn, tenant, entry)?,
        };
        if let Some(o) = &mut posted {
            o.reversed |= self.reversed.contains(&(tenant, entry));
        }
        Ok(posted)
    }

    /// The event a settlement, return or waiver names, with what stands on it.
    fn subject(
        &self,
        tenant: TenantId,
        event: EventId,
    ) -> Result<(Option<PostedEvent>, Standing), StoreError> {
        let entry = match self.event_entries.get(&(tenant, event)) {
            Some(e) => Some(*e),
            None => entry_of_event(self.conn, tenant, event)?,
        };
        let Some(entry) = entry else {
            return Ok((None, Standing::default()));
        };
        let posted = self.original(tenant, entry)?;
        let standing = match &posted {
            Some(p) => self.standing(tenant, p)?,
            None => Standing::default(),
        };
        Ok((posted, standing))
    }

    /// The current state of the loan an event is about.
    fn loan_of(
        &mut self,
        tenant: TenantId,
        event: Option<&PostedEvent>,
    ) -> Result<Option<LoanState>, StoreError> {
        match event.and_then(|e| e.entry.lines().iter().find_map(|l| l.loan_id)) {
            Some(loan) => self.loan(tenant, loan),
            None => Ok(None),
        }
    }

    /// The entries acting on `event` (committed and in this batch), as they stand now.
    fn dependents_of(
        &self,
        tenant: TenantId,
        event: EventId,
    ) -> Result<Vec<(EntryId, PostedEvent)>, StoreError> {
        let mut entries = committed_dependents(self.conn, tenant, event)?;
        if let Some(batch) = self.dependents.get(&(tenant, event)) {
            entries.extend(batch.iter().copied());
        }
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(p) = self.original(tenant, entry)? {
                out.push((entry, p));
            }
        }
        Ok(out)
    }

    /// What stands on an event: its live settlement, return, waivers, and for a charge-off the
    /// loan's live recoveries (a recovery stands while neither reversed nor returned).
    fn standing(&self, tenant: TenantId, event: &PostedEvent) -> Result<Standing, StoreError> {
        let mut standing = Standing::default();
        for (_, dep) in self.dependents_of(tenant, event.event_id)? {
            if dep.reversed {
                continue;
            }
            match dep.event_type {
                EventType::DisbursementSettled => standing.settled = true,
                EventType::PaymentReturned => standing.returned = true,
                EventType::FeeWaived => {
                    let waived = dep
                        .entry
                        .lines()
                        .iter()
                        .filter(|l| l.account == Account::FeesReceivable)
                        .try_fold(Money::ZERO, |t, l| t.checked_add(l.amount))?;
                    standing.waived = standing.waived.checked_add(waived)?;
                }
                _ => {}
            }
        }
        if event.event_type == EventType::Chargeoff {
            // Any recovery in force postdates the charge-off in force: a recovery needs one,
            // and a charge-off cannot be reversed under a recovery.
            let loan = event.entry.lines().iter().find_map(|l| l.loan_id);
            if let Some(loan) = loan {
                let mut recoveries = committed_recoveries(self.conn, tenant, loan)?;
                if let Some(batch) = self.recoveries.get(&(tenant, loan)) {
                    recoveries.extend(batch.iter().copied());
                }
                for entry in recoveries {
                    let Some(r) = self.original(tenant, entry)? else {
                        continue;
                    };
                    if !r.reversed && !self.standing(tenant, &r)?.returned {
                        standing.recovered = true;
                        break;
                    }
                }
            }
        }
        Ok(standing)
    }

    /// Adds the rows of an accepted job: event, lines, header with its chain link, outbox row
    /// (its delivery state), accrual inputs and loan links. Moves the tenant's chain head.
    fn add_rows(
        &mut self,
        req: &WriteRequest,
        d: &Decision,
        tenant: &mut TenantState,
        ids: Ids<'_>,
    ) {
        let tenant_s = req.tenant.to_string();
        let entry_s = ids.entry_id.to_string();
        let event_s = ids.event_id.to_string();
        let correlation = d.correlation_id.unwrap_or(ids.event_id).to_string();
        let reverses = d.reverses.map(|r| r.to_string());
        let effective = format_date(d.effective_at);
        let entry_seq = self.next_entry_seq;
        self.next_entry_seq += 1;
        self.rows.events.push(EventRow {
            event_id: event_s.clone(),
            tenant_id: tenant_s.clone(),
            event_type: d.event_type.as_str(),
            loan_id: d.loan_id.map(|l| l.to_string()),
            payload: req.payload.clone(),
            metadata: req.metadata.clone(),
            external_ref: d.external_ref.clone(),
            allocation_policy: d.allocation_policy,
            recorded_at: ids.posted_at.to_owned(),
            subject_event_id: d.subject.map(|e| e.to_string()),
            entry_seq,
        });
        let first_line = self.add_line_rows(d, &entry_s, &tenant_s, &effective);
        let chained: Vec<ChainedLine<'_>> = self.rows.lines[first_line..]
            .iter()
            .map(|l| ChainedLine {
                sequence: l.sequence,
                account_code: l.account_code,
                direction: l.direction,
                amount_minor: l.amount_minor,
                currency: &l.currency,
                layer: l.layer,
                loan_id: l.loan_id.as_deref(),
                borrower_id: l.borrower_id.as_deref(),
                external_ref: l.external_ref.as_deref(),
            })
            .collect();
        let hash = chain::entry_hash(
            &tenant.chain_head,
            &ChainedEntry {
                entry_id: &entry_s,
                tenant_id: &tenant_s,
                event_id: &event_s,
                event_type: d.event_type.as_str(),
                effective_at: &effective,
                posted_at: ids.posted_at,
                correlation_id: &correlation,
                reverses_entry_id: reverses.as_deref(),
                metadata: req.metadata.as_deref(),
            },
            &chained,
        );
        let prev_hash = std::mem::replace(&mut tenant.chain_head, hash.clone());
        self.rows.outbox.push(OutboxRow {
            entry_seq,
            now_ms: ids.now_ms,
            traceparent: req.traceparent.clone(),
        });
        self.rows.entries.push(EntryRow {
            entry_seq,
            entry_id: entry_s.clone(),
            tenant_id: tenant_s.clone(),
            event_id: event_s,
            event_type: d.event_type.as_str(),
            effective_at: effective.clone(),
            posted_at: ids.posted_at.to_owned(),
            correlation_id: correlation,
            reverses_entry_id: reverses,
            description: d.description.clone(),
            actor: req.actor.clone(),
            metadata: req.metadata.clone(),
            line_count: i64::try_from(d.entry.lines().len()).unwrap_or(i64::MAX),
            prev_hash,
            hash,
        });
        self.add_loan_rows(req, d, &entry_s, entry_seq);
    }

    /// Adds the journal line rows of an accepted job's entry; returns the index of its first.
    fn add_line_rows(
        &mut self,
        d: &Decision,
        entry_s: &str,
        tenant_s: &str,
        effective: &str,
    ) -> usize {
        let first_line = self.rows.lines.len();
        for (i, line) in d.entry.lines().iter().enumerate() {
            self.rows.lines.push(LineRow {
                entry_id: entry_s.to_owned(),
                sequence: i64::try_from(i + 1).unwrap_or(i64::MAX),
                tenant_id: tenant_s.to_owned(),
                account_code: line.account.code(),
                direction: line.direction.as_str(),
                amount_minor: line.amount.minor(),
                currency: line.currency.as_str().to_owned(),
                layer: line.layer.as_str(),
                effective_at: effective.to_owned(),
                loan_id: line.loan_id.map(|l| l.to_string()),
                borrower_id: line.borrower_id.map(|b| b.to_string()),
                external_ref: line.external_ref.clone(),
            });
        }
        first_line
    }

    /// The accrual inputs and the loan links of an accepted job's entry.
    fn add_loan_rows(&mut self, req: &WriteRequest, d: &Decision, entry_s: &str, entry_seq: i64) {
        let tenant_s = req.tenant.to_string();
        let effective = format_date(d.effective_at);
        if let Command::Accrue(a) = &req.command {
            let program = a.program_id.to_string();
            for item in &a.loans {
                self.rows.accrual_lines.push(AccrualLineRow {
                    entry_id: entry_s.to_owned(),
                    loan_id: item.loan_id.to_string(),
                    tenant_id: tenant_s.clone(),
                    program_id: program.clone(),
                    accrual_date: effective.clone(),
                    convention: a.convention.as_str(),
                    outstanding_principal_minor: item.outstanding_principal.minor(),
                    annual_rate_bps: item.annual_rate_bps,
                    interest_minor: item.interest.minor(),
                });
            }
        }
        for (loan, lines) in d.entry.loan_spans() {
            self.rows.loan_entries.push(LoanEntryRow {
                tenant_id: tenant_s.clone(),
                loan_id: loan.to_string(),
                entry_seq,
                event_type: d.event_type.as_str(),
                effective_at: effective.clone(),
                lines,
            });
        }
    }

    /// Takes an accepted job's state into the overlay.
    fn accept(&mut self, req: &WriteRequest, a: Accepted, posted_at: &str) {
        if a.new_tenant {
            self.rows.tenants.push(TenantRow {
                tenant_id: a.tenant.to_string(),
                created_at: posted_at.to_owned(),
            });
        }
        for key in a.gl_keys {
            self.touched_gl.insert((a.tenant, key));
        }
        self.tenants.insert(a.tenant, a.tenant_state);
        for (id, state) in a.loans {
            let opened_at = if a.opened == Some(id) {
                Some(posted_at.to_owned())
            } else {
                self.loans
                    .get(&(a.tenant, id))
                    .and_then(|t| t.opened_at.clone())
            };
            self.loans.insert(
                (a.tenant, id),
                TouchedLoan {
                    state,
                    last_activity_at: posted_at.to_owned(),
                    opened_at,
                },
            );
        }
        match &req.command {
            Command::Pay(p) => {
                if let Some(r) = &p.external_ref {
                    self.external_refs.insert((a.tenant, r.clone()));
                }
            }
            Command::Accrue(acc) => {
                for item in &acc.loans {
                    self.accrued
                        .insert((a.tenant, item.loan_id, acc.accrual_date));
                }
            }
            Command::Reverse(r) => {
                self.reversed.insert((a.tenant, r.reverses_entry_id));
                if let Some(e) = self.entries.get_mut(&(a.tenant, r.reverses_entry_id)) {
                    e.reversed = true;
                    if e.event_type == EventType::Accrual {
                        // The reversed accrual's loans may be accrued for that date again.
                        let date = e.effective_at;
                        for loan in e.entry.lines().iter().filter_map(|l| l.loan_id) {
                            self.accrued.remove(&(a.tenant, loan, date));
                        }
                    }
                }
            }
            Command::Disburse(_)
            | Command::AssessFee(_)
            | Command::Settle(_)
            | Command::ReturnPayment(_)
            | Command::WaiveFee(_)
            | Command::ChargeOff(_)
            | Command::Adjust(_)
            | Command::ClosePeriod(_) => {}
        }
        if let Some(subject) = a.subject {
            self.dependents
                .entry((a.tenant, subject))
                .or_default()
                .push(a.entry_id);
        }
        if a.posted.event_type == EventType::Recovery
            && let Some(loan) = a.posted.entry.lines().iter().find_map(|l| l.loan_id)
        {
            self.recoveries
                .entry((a.tenant, loan))
                .or_default()
                .push(a.entry_id);
        }
        self.event_entries
            .insert((a.tenant, a.posted.event_id), a.entry_id);
        self.entries.insert((a.tenant, a.entry_id), a.posted);
    }

    /// Writes every row of the batch (inside the caller's transaction).
    pub(crate) fn write(&self) -> Result<(), StoreError> {
        let loans: Vec<LoanRow> = self
            .loans
            .iter()
            .map(|((tenant, loan), t)| LoanRow {
                tenant_id: tenant.to_string(),
                loan_id: loan.to_string(),
                borrower_id: t.state.borrower_id.to_string(),
                currency: t.state.currency.as_str().to_owned(),
                opened_at: t
                    .opened_at
                    .clone()
                    .unwrap_or_else(|| t.last_activity_at.clone()),
                opened_on: t.state.opened_on.map(format_date),
                balances: t.state.balances.minor_parts(),
                last_activity_at: t.last_activity_at.clone(),
            })
            .collect();
        let balances: Vec<BalanceRow> = self
            .touched_gl
            .iter()
            .map(|(tenant, key)| {
                let (dr, cr) = self.tenants[tenant].gl.get(key);
                BalanceRow {
                    tenant_id: tenant.to_string(),
                    account_code: key.0.code(),
                    currency: key.1.as_str().to_owned(),
                    layer: key.2.as_str(),
                    dr_minor: dr.minor(),
                    cr_minor: cr.minor(),
                }
            })
            .collect();
        self.rows.write(self.conn, &loans, &balances)
    }

    /// The batch's decided state, for the cache once its COMMIT returned.
    pub(crate) fn into_committed(
        self,
    ) -> (
        HashMap<TenantId, TenantState>,
        HashMap<(TenantId, LoanId), LoanState>,
    ) {
        let loans = self.loans.into_iter().map(|(k, t)| (k, t.state)).collect();
        (self.tenants, loans)
    }
}

/// Ids and times assigned to one accepted job.
#[derive(Clone, Copy)]
struct Ids<'a> {
    event_id: EventId,
    entry_id: EntryId,
    posted_at: &'a str,
    now_ms: i64,
}

/// The answer of a decided write.
fn receipt(d: &Decision, event_id: EventId, entry_id: EntryId, posted_at: &str) -> Receipt {
    let posted_at = posted_at.to_owned();
    match d.outcome {
        Outcome::Fee => Receipt::Fee(FeeReceipt {
            fee_event_id: event_id,
            journal_entry_id: entry_id,
            posted_at,
        }),
        Outcome::Disbursement => Receipt::Disbursement(DisbursementReceipt {
            disbursement_event_id: event_id,
            journal_entry_id: entry_id,
            posted_at,
        }),
        Outcome::Payment(allocation, recovery_minor) => Receipt::Payment(PaymentReceipt {
            payment_event_id: event_id,
            journal_entry_id: entry_id,
            allocation,
            recovery_minor,
            posted_at,
        }),
        Outcome::Settlement {
            disbursement,
            amount,
            currency,
        } => Receipt::Settlement(SettlementReceipt {
            settlement_event_id: event_id,
            journal_entry_id: entry_id,
            disbursement_event_id: disbursement,
            amount_minor: amount,
            currency,
            posted_at,
        }),
        Outcome::Return {
            payment,
            returned,
            nsf_fee,
        } => Receipt::Return(ReturnReceipt {
            return_event_id: event_id,
            journal_entry_id: entry_id,
            payment_event_id: payment,
            returned_allocation: returned,
            nsf_fee_minor: nsf_fee,
            posted_at,
        }),
        Outcome::Waiver { fee, waived } => Receipt::Waiver(WaiverReceipt {
            waiver_event_id: event_id,
            journal_entry_id: entry_id,
            fee_event_id: fee,
            waived_minor: waived,
            posted_at,
        }),
        Outcome::ChargeOff {
            loan,
            written_off,
            total,
        } => Receipt::ChargeOff(ChargeOffReceipt {
            chargeoff_event_id: event_id,
            journal_entry_id: entry_id,
            loan_id: loan,
            charged_off: ChargedOff {
                principal_minor: written_off.principal,
                interest_minor: written_off.interest,
                fees_minor: written_off.fees,
            },
            total_minor: total,
            posted_at,
        }),
        Outcome::Adjustment => Receipt::Adjustment(AdjustmentReceipt {
            adjustment_event_id: event_id,
            journal_entry_id: entry_id,
            posted_at,
        }),
        Outcome::Accrual { loan_count, total } => Receipt::Accrual(AccrualReceipt {
            accrual_event_id: event_id,
            journal_entry_id: entry_id,
            loan_count,
            total_accrued_minor: total,
            posted_at,
        }),
        Outcome::Reversal {
            reverses,
            correlation_id,
        } => Receipt::Reversal(ReversalReceipt {
            journal_entry_id: entry_id,
            reverses_entry_id: reverses,
            posted_at,
            correlation_id,
        }),
    }
}

/// A tenant's committed state, or `None` for a tenant that has never written.
fn load_tenant(conn: &Connection, tenant: TenantId) -> Result<Option<TenantState>, StoreError> {
    let t = tenant.to_string();
    let known = conn
        .prepare_cached("SELECT 1 FROM tenants WHERE tenant_id = ?1")?
        .exists(params![t])?;
    if !known {
        return Ok(None);
    }
    let chain_head: String = conn
        .prepare_cached(
            "SELECT hash FROM journal_entries WHERE tenant_id = ?1 ORDER BY entry_seq DESC LIMIT 1",
        )?
        .query_row(params![t], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| chain::GENESIS.to_owned());
    let mut stmt = conn.prepare_cached(
        "SELECT account_code, currency, layer, dr_minor, cr_minor FROM account_balances WHERE tenant_id = ?1",
    )?;
    let mut rows = stmt.query(params![t])?;
    let mut totals = Vec::new();
    while let Some(r) = rows.next()? {
        let account = Account::from_code(&r.get::<_, String>(0)?)
            .ok_or_else(|| StoreError::corrupt("account_balances.account_code"))?;
        let currency = Currency::parse(&r.get::<_, String>(1)?)
            .ok_or_else(|| StoreError::corrupt("account_balances.currency"))?;
        let layer = Layer::parse(&r.get::<_, String>(2)?)
            .ok_or_else(|| StoreError::corrupt("account_balances.layer"))?;
        totals.push((
            (account, currency, layer),
            Money::from_minor(r.get(3)?),
            Money::from_minor(r.get(4)?),
        ));
    }
    let gl = GlTotals::from_rows(totals)
        .map_err(|_| StoreError::corrupt("account_balances: a currency's totals exceed i64"))?;
    let lock: Option<String> = conn
        .prepare_cached("SELECT max(through_date) FROM period_closes WHERE tenant_id = ?1")?
        .query_row(params![t], |r| r.get(0))?;
    let lock_date = lock
        .map(|d| {
            crate::clock::parse_date(&d)
                .ok_or_else(|| StoreError::corrupt("period_closes.through_date"))
        })
        .transpose()?;
    Ok(Some(TenantState {
        chain_head,
        gl,
        lock_date,
    }))
}

/// A loan's committed state.
fn load_loan(
    conn: &Connection,
    tenant: TenantId,
    loan_id: LoanId,
) -> Result<Option<LoanState>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT borrower_id, currency, opened_on, principal_minor, interest_minor, fees_minor, suspense_minor, \
             disbursed_total_minor, paid_total_minor, charged_off_minor, recovered_minor \
             FROM loans WHERE tenant_id = ?1 AND loan_id = ?2",
        )?
        .query_row(params![tenant.to_string(), loan_id.to_string()], |r| {
            let mut m = [0i64; FIELDS];
            for (i, slot) in m.iter_mut().enumerate() {
                *slot = r.get(3 + i)?;
            }
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                m,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    let Some((borrower, currency, m, opened_on)) = row else {
        return Ok(None);
    };
    Ok(Some(LoanState {
        borrower_id: BorrowerId::parse(&borrower)
            .ok_or_else(|| StoreError::corrupt("loans.borrower_id"))?,
        currency: Currency::parse(&currency)
            .ok_or_else(|| StoreError::corrupt("loans.currency"))?,
        opened_on: opened_on
            .map(|d| {
                crate::clock::parse_date(&d).ok_or_else(|| StoreError::corrupt("loans.opened_on"))
            })
            .transpose()?,
        balances: LoanBalances::from_minor_parts(m),
    }))
}

/// The entry of a committed event of the tenant.
fn entry_of_event(
    conn: &Connection,
    tenant: TenantId,
    event: EventId,
) -> Result<Option<EntryId>, StoreError> {
    let entry: Option<String> = conn
        .prepare_cached(
            // `events.entry_seq` is the entry's primary key: two key lookups.
            "SELECT je.entry_id FROM events ev JOIN journal_entries je ON je.entry_seq = ev.entry_seq \
             WHERE ev.event_id = ?1 AND ev.tenant_id = ?2",
        )?
        .query_row(params![event.to_string(), tenant.to_string()], |r| r.get(0))
        .optional()?;
    entry
        .map(|e| EntryId::parse(&e).ok_or_else(|| StoreError::corrupt("journal_entries.entry_id")))
        .transpose()
}

/// The committed entries whose events act on `event`.
fn committed_dependents(
    conn: &Connection,
    tenant: TenantId,
    event: EventId,
) -> Result<Vec<EntryId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT je.entry_id FROM events ev JOIN journal_entries je ON je.entry_seq = ev.entry_seq \
         WHERE ev.tenant_id = ?1 AND ev.subject_event_id = ?2",
    )?;
    let ids = stmt.query_map(params![tenant.to_string(), event.to_string()], |r| {
        r.get::<_, String>(0)
    })?;
    ids.map(|e| EntryId::parse(&e?).ok_or_else(|| StoreError::corrupt("journal_entries.entry_id")))
        .collect()
}

/// The committed recovery entries of a loan.
fn committed_recoveries(
    conn: &Connection,
    tenant: TenantId,
    loan: LoanId,
) -> Result<Vec<EntryId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT je.entry_id FROM loan_entries le JOIN journal_entries je ON je.entry_seq = le.entry_seq \
         WHERE le.tenant_id = ?1 AND le.loan_id = ?2 AND le.event_type = 'recovery'",
    )?;
    let ids = stmt.query_map(params![tenant.to_string(), loan.to_string()], |r| {
        r.get::<_, String>(0)
    })?;
    ids.map(|e| EntryId::parse(&e?).ok_or_else(|| StoreError::corrupt("journal_entries.entry_id")))
        .collect()
}

/// A committed entry and its event.
fn load_posted(
    conn: &Connection,
    tenant: TenantId,
    entry: EntryId,
) -> Result<Option<PostedEvent>, StoreError> {
    let entry_s = entry.to_string();
    let header: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT event_id, event_type, effective_at FROM journal_entries WHERE tenant_id = ?1 AND entry_id = ?2",
        )?
        .query_row(params![tenant.to_string(), entry_s], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((event, event_type, effective)) = header else {
        return Ok(None);
    };
    let reversed = conn
        .prepare_cached("SELECT 1 FROM journal_entries WHERE reverses_entry_id = ?1")?
        .exists(params![entry_s])?;
    let lines = load_lines(conn, &entry_s)?;
    Ok(Some(PostedEvent {
        event_id: EventId::parse(&event)
            .ok_or_else(|| StoreError::corrupt("journal_entries.event_id"))?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| StoreError::corrupt("journal_entries.event_type"))?,
        effective_at: crate::clock::parse_date(&effective)
            .ok_or_else(|| StoreError::corrupt("journal_entries.effective_at"))?,
        entry: JournalEntry::new(lines)?,
        reversed,
    }))
}

/// An entry's lines as domain values, in sequence order.
pub(crate) fn load_lines(
    conn: &Connection,
    entry_id: &str,
) -> Result<Vec<JournalLine>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_code, direction, amount_minor, currency, layer, loan_id, borrower_id, external_ref \
         FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence",
    )?;
    let rows = stmt.query_map(params![entry_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut lines = Vec::new();
    for row in rows {
        let (account, direction, amount, currency, layer, loan, borrower, external_ref) = row?;
        lines.push(JournalLine {
            account: Account::from_code(&account)
                .ok_or_else(|| StoreError::corrupt("journal_lines.account_code"))?,
            direction: Direction::parse(&direction)
                .ok_or_else(|| StoreError::corrupt("journal_lines.direction"))?,
            amount: Money::from_minor(amount),
            currency: Currency::parse(&currency)
                .ok_or_else(|| StoreError::corrupt("journal_lines.currency"))?,
            layer: Layer::parse(&layer)
                .ok_or_else(|| StoreError::corrupt("journal_lines.layer"))?,
            loan_id: loan
                .as_deref()
                .map(|l| {
                    LoanId::parse(l).ok_or_else(|| StoreError::corrupt("journal_lines.loan_id"))
                })
                .transpose()?,
            borrower_id: borrower
                .as_deref()
                .map(|b| {
                    BorrowerId::parse(b)
                        .ok_or_else(|| StoreError::corrupt("journal_lines.borrower_id"))
                })
                .transpose()?,
            external_ref,
        });
    }
    Ok(lines)
}
