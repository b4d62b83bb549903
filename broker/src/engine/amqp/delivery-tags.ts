// Delivery tags across channel generations. An AMQP channel numbers its deliveries from 1, and a
// restored session runs on a new channel; the session above must keep seeing one increasing
// sequence, so it is shown virtual tags: virtual = base + channel tag, where base is the highest
// virtual tag handed out before the restore. A tag from an earlier generation names a delivery of
// a channel that is gone: RabbitMQ requeued it and will deliver it again (redelivered=true), so an
// ack or nack of it is dropped.

export class DeliveryTags {
  /** The highest virtual tag of every earlier generation; 0 for the first channel. */
  #base = 0;
  /** The highest virtual tag handed out so far. */
  #highest = 0;

  /** The virtual tag for a delivery of the current channel. */
  toVirtual(channelTag: number): number {
    const tag = this.#base + channelTag;
    if (tag > this.#highest) this.#highest = tag;
    return tag;
  }

  /**
   * The current channel's tag for a virtual one, or undefined when it belongs to an earlier
   * generation. A `multiple` settlement of a current tag maps to the same channel tag: the earlier
   * generation's deliveries are not on this channel, so "up to and including" stays exact. Tag 0
   * stays 0 (with `multiple`, AMQP's "everything outstanding": on this channel, exactly that).
   */
  toChannel(virtualTag: number): number | undefined {
    if (virtualTag === 0) return 0;
    if (!Number.isInteger(virtualTag) || virtualTag <= this.#base) return undefined;
    return virtualTag - this.#base;
  }

  /** A new channel: every tag handed out until now becomes stale. */
  newGeneration(): void {
    this.#base = this.#highest;
  }
}
