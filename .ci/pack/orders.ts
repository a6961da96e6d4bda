import type { Producer } from "@webkpl/kpl";

export interface Order {
  id: string;
  customer: string;
  total: number;
}

/** Publishes orders keyed by customer; returns the ids of those that failed. */
export async function publishOrders(producer: Producer, orders: Order[]): Promise<string[]> {
  const results = await Promise.all(
    orders.map((order) =>
      producer.put({ partitionKey: order.customer, data: JSON.stringify(order) })
    ),
  );
  return orders.filter((_, i) => !results[i]!.success).map((order) => order.id);
}
