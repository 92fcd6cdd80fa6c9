/**
 * The peer loop's "what is in the dataplane on behalf of each lease" (lease key → entries), with an
 * index from each kernel entry's identity (`PeerSink.entryIds`: e.g. a route's table and destination)
 * to the lease and entry that own it, for the entry guard (entry-guard.ts) to look up an event in O(1).
 * The index is built on the first lookup after a full reconcile (which replaces every lease at once;
 * building it there would add to the reconcile's time) and kept up to date by every later change.
 */

/** The lease and the entry that own one kernel entry. */
export interface Owner<E> {
  readonly lease: string;
  readonly entry: E;
}

export class ProgrammedPeers<E> extends Map<string, readonly E[]> {
  private index: Map<string, Owner<E>> | null = null;
  private ids: ((e: E) => readonly string[]) | undefined;

  /** `ids`: the identities of the kernel entries `e` holds (none: no index is kept). */
  withIds(ids: ((e: E) => readonly string[]) | undefined): this {
    this.ids = ids;
    return this;
  }

  override set(lease: string, entries: readonly E[]): this {
    if (this.index) {
      this.unindex(lease);
      this.add(lease, entries);
    }
    return super.set(lease, entries);
  }

  override delete(lease: string): boolean {
    if (this.index) this.unindex(lease);
    return super.delete(lease);
  }

  override clear(): void {
    this.index = null;
    super.clear();
  }

  /** The owner of the kernel entry with identity `id`, or undefined when weft wants none there. */
  owner(id: string): Owner<E> | undefined {
    if (!this.ids) return undefined;
    if (!this.index) {
      this.index = new Map();
      for (const [lease, entries] of this) this.add(lease, entries);
    }
    return this.index.get(id);
  }

  private add(lease: string, entries: readonly E[]): void {
    for (const entry of entries)
      for (const id of this.ids!(entry)) this.index!.set(id, { lease, entry });
  }

  private unindex(lease: string): void {
    for (const entry of this.get(lease) ?? [])
      for (const id of this.ids!(entry))
        if (this.index!.get(id)?.lease === lease) this.index!.delete(id);
  }
}
