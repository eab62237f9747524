"""Every skip and cancel reason a message row can carry: one list of codes, each labelled in every shipped locale.

Flows, the send policy, webhooks and the dispatcher write only these codes into ``message.skip_reason``; the
admin shows ``label(code, locale)``. ``PERMANENT`` codes name causes that never go away (the order was cancelled,
the customer's data was erased): such skips are never offered for resend. The others are re-checked before a
resend (plugin.messaging.resend).
"""

from __future__ import annotations

from plugin.messaging import locales

# -- codes written by the flows (plugin.flows) -------------------------------------------------------------
ORDER_CANCELLED = "order_cancelled"
ORDER_REFUNDED = "order_refunded"
ORDER_RETURNED = "order_returned"
NO_CONTACT_ACCESS = "no_contact_access"
HOLDOUT = "holdout"
ALREADY_REORDERED = "already_reordered"
ACTIVE_SUBSCRIPTION = "active_subscription"
NO_MERCHANT_ADDRESS = "no_merchant_address"
# The customer ordered again: a win-back (or its reminder) has nothing left to win.
ORDERED_AGAIN = "ordered_again"
# -- written by the send policy and the last check: marketing needs the sender's postal address (CAN-SPAM) ----
NO_POSTAL_ADDRESS = "no_postal_address"
# -- written by bounce and complaint reports that arrive after the send (plugin.messaging.withdrawals) ---------
BOUNCED = "bounced"
COMPLAINED = "complained"

# code -> label per locale. English first; every code has a label in every locale of locales.SUPPORTED.
LABELS: dict[str, dict[str, str]] = {
    # The dispatcher's fallback for a skip decision without a reason (the send policy always gives one).
    "skipped": {
        "en": "Not sent.", "de": "Nicht gesendet.", "fr": "Non envoyé.", "es": "No enviado.", "it": "Non inviato.",
        "pt-BR": "Não enviado.", "ja": "送信されていません。", "zh-Hans": "未发送。", "zh-Hant": "未傳送。",
        "ar": "لم يُرسل.",
    },
    "store_not_installed": {
        "en": "The store is uninstalled or needs to be reinstalled, so nothing is sent.",
        "de": "Der Shop ist deinstalliert oder muss neu installiert werden, daher wird nichts gesendet.",
        "fr": "La boutique est désinstallée ou doit être réinstallée : rien n'est envoyé.",
        "es": "La tienda está desinstalada o debe reinstalarse, así que no se envía nada.",
        "it": "Il negozio è disinstallato o va reinstallato, quindi non viene inviato nulla.",
        "pt-BR": "A loja foi desinstalada ou precisa ser reinstalada, então nada é enviado.",
        "ja": "ストアがアンインストールされたか再インストールが必要なため、送信しません。",
        "zh-Hans": "店铺已卸载或需要重新安装，因此不发送任何消息。",
        "zh-Hant": "商店已解除安裝或需要重新安裝，因此不傳送任何訊息。",
        "ar": "المتجر أُلغي تثبيته أو يحتاج إلى إعادة التثبيت، لذلك لا يُرسل شيء.",
    },
    "store_uninstalled": {
        "en": "The store uninstalled the app; nothing is sent.",
        "de": "Der Shop hat die App deinstalliert; es wird nichts gesendet.",
        "fr": "La boutique a désinstallé l'application : rien n'est envoyé.",
        "es": "La tienda desinstaló la aplicación; no se envía nada.",
        "it": "Il negozio ha disinstallato l'app; non viene inviato nulla.",
        "pt-BR": "A loja desinstalou o app; nada é enviado.",
        "ja": "ストアがアプリをアンインストールしたため、送信しません。",
        "zh-Hans": "店铺已卸载本应用，不发送任何消息。",
        "zh-Hant": "商店已解除安裝本應用程式，不傳送任何訊息。",
        "ar": "ألغى المتجر تثبيت التطبيق؛ لا يُرسل شيء.",
    },
    "delivery_updates_off": {
        "en": "The customer turned delivery updates off.",
        "de": "Der Kunde hat Lieferbenachrichtigungen ausgeschaltet.",
        "fr": "Le client a désactivé les notifications de livraison.",
        "es": "El cliente desactivó los avisos de entrega.",
        "it": "Il cliente ha disattivato gli aggiornamenti di consegna.",
        "pt-BR": "O cliente desativou as atualizações de entrega.",
        "ja": "お客様が配送状況のお知らせをオフにしました。",
        "zh-Hans": "客户已关闭配送通知。",
        "zh-Hant": "顧客已關閉配送通知。",
        "ar": "أوقف العميل تحديثات التوصيل.",
    },
    "collapsed": {
        "en": "A later delivery update for the same parcel carries this news too.",
        "de": "Eine spätere Lieferbenachrichtigung zum selben Paket enthält auch diese Nachricht.",
        "fr": "Une notification ultérieure pour le même colis contient aussi cette information.",
        "es": "Un aviso posterior del mismo paquete incluye también esta novedad.",
        "it": "Un aggiornamento successivo dello stesso pacco contiene anche questa notizia.",
        "pt-BR": "Uma atualização posterior do mesmo pacote também traz esta notícia.",
        "ja": "同じ荷物の後のお知らせにこの内容も含まれています。",
        "zh-Hans": "同一包裹的后续配送通知也包含此消息。",
        "zh-Hant": "同一包裹的後續配送通知也包含此消息。",
        "ar": "تحديث توصيل لاحق للطرد نفسه يتضمن هذا الخبر أيضًا.",
    },
    "quiet_hours": {
        "en": "Held until the customer's quiet hours end.",
        "de": "Zurückgehalten bis zum Ende der Ruhezeit des Kunden.",
        "fr": "Retenu jusqu'à la fin des heures calmes du client.",
        "es": "Retenido hasta que terminen las horas de silencio del cliente.",
        "it": "Trattenuto fino alla fine delle ore di quiete del cliente.",
        "pt-BR": "Retido até o fim do horário de silêncio do cliente.",
        "ja": "お客様の通知停止時間が終わるまで保留しています。",
        "zh-Hans": "暂缓至客户的免打扰时段结束。",
        "zh-Hant": "暫緩至顧客的勿擾時段結束。",
        "ar": "مؤجل حتى تنتهي ساعات الهدوء لدى العميل.",
    },
    "flow_disabled": {
        "en": "This flow is switched off for the store.",
        "de": "Dieser Ablauf ist für den Shop ausgeschaltet.",
        "fr": "Ce scénario est désactivé pour la boutique.",
        "es": "Este flujo está desactivado para la tienda.",
        "it": "Questo flusso è disattivato per il negozio.",
        "pt-BR": "Este fluxo está desativado para a loja.",
        "ja": "このフローはストアで無効になっています。",
        "zh-Hans": "此流程已对该店铺关闭。",
        "zh-Hant": "此流程已對該商店關閉。",
        "ar": "هذا التدفق متوقف لهذا المتجر.",
    },
    "channel_not_allowed": {
        "en": "This marketplace does not allow this kind of message to its buyers.",
        "de": "Dieser Marktplatz erlaubt diese Art von Nachricht an seine Käufer nicht.",
        "fr": "Cette place de marché n'autorise pas ce type de message à ses acheteurs.",
        "es": "Este marketplace no permite este tipo de mensaje a sus compradores.",
        "it": "Questo marketplace non consente questo tipo di messaggio ai suoi acquirenti.",
        "pt-BR": "Este marketplace não permite este tipo de mensagem aos compradores.",
        "ja": "このマーケットプレイスでは購入者へのこの種のメッセージは許可されていません。",
        "zh-Hans": "该平台不允许向买家发送此类消息。",
        "zh-Hant": "該平台不允許向買家傳送此類訊息。",
        "ar": "لا يسمح هذا السوق بهذا النوع من الرسائل إلى المشترين.",
    },
    NO_CONTACT_ACCESS: {
        "en": "The app has no access to the customer's contact details.",
        "de": "Die App hat keinen Zugriff auf die Kontaktdaten des Kunden.",
        "fr": "L'application n'a pas accès aux coordonnées du client.",
        "es": "La aplicación no tiene acceso a los datos de contacto del cliente.",
        "it": "L'app non ha accesso ai dati di contatto del cliente.",
        "pt-BR": "O app não tem acesso aos dados de contato do cliente.",
        "ja": "アプリは顧客の連絡先情報にアクセスできません。",
        "zh-Hans": "应用无权访问该客户的联系方式。",
        "zh-Hant": "應用程式無權存取該顧客的聯絡資料。",
        "ar": "لا يملك التطبيق صلاحية الوصول إلى بيانات اتصال العميل.",
    },
    "no_address": {
        "en": "There is no email address to send to.",
        "de": "Es gibt keine E-Mail-Adresse, an die gesendet werden kann.",
        "fr": "Il n'y a pas d'adresse e-mail à laquelle envoyer.",
        "es": "No hay ninguna dirección de correo a la que enviar.",
        "it": "Non c'è un indirizzo email a cui inviare.",
        "pt-BR": "Não há endereço de e-mail para enviar.",
        "ja": "送信先のメールアドレスがありません。",
        "zh-Hans": "没有可发送的电子邮件地址。",
        "zh-Hant": "沒有可傳送的電子郵件地址。",
        "ar": "لا يوجد عنوان بريد إلكتروني للإرسال إليه.",
    },
    NO_MERCHANT_ADDRESS: {
        "en": "No alert or sender email address is set for the merchant.",
        "de": "Für den Händler ist keine Alarm- oder Absenderadresse hinterlegt.",
        "fr": "Aucune adresse d'alerte ou d'expéditeur n'est définie pour le marchand.",
        "es": "El comerciante no tiene dirección de alertas ni de remitente.",
        "it": "Il commerciante non ha un indirizzo per avvisi o mittente.",
        "pt-BR": "O lojista não tem endereço de alerta nem de remetente.",
        "ja": "加盟店の通知先または送信元メールアドレスが設定されていません。",
        "zh-Hans": "商家未设置提醒或发件人邮箱地址。",
        "zh-Hant": "商家未設定提醒或寄件者電子郵件地址。",
        "ar": "لم يُحدَّد للتاجر عنوان بريد للتنبيهات أو للمرسل.",
    },
    NO_POSTAL_ADDRESS: {
        "en": "The store has no postal address, which every marketing email must carry; add it in Settings.",
        "de": "Der Shop hat keine Postanschrift, die jede Marketing-E-Mail enthalten muss; tragen Sie sie in den "
              "Einstellungen ein.",
        "fr": "La boutique n'a pas d'adresse postale, obligatoire dans chaque e-mail marketing ; ajoutez-la dans "
              "les Réglages.",
        "es": "La tienda no tiene dirección postal, obligatoria en cada correo de marketing; añádela en Ajustes.",
        "it": "Il negozio non ha un indirizzo postale, obbligatorio in ogni email di marketing; aggiungilo nelle "
              "Impostazioni.",
        "pt-BR": "A loja não tem endereço postal, obrigatório em todo e-mail de marketing; adicione-o em "
                 "Configurações.",
        "ja": "ストアの郵送先住所がありません。マーケティングメールには必須のため、設定で追加してください。",
        "zh-Hans": "店铺没有邮寄地址，而每封营销邮件都必须包含该地址；请在设置中添加。",
        "zh-Hant": "商店沒有郵寄地址，而每封行銷郵件都必須包含該地址；請在設定中新增。",
        "ar": "ليس للمتجر عنوان بريدي، وهو مطلوب في كل رسالة تسويقية؛ أضفه من الإعدادات.",
    },
    "customer_redacted": {
        "en": "The customer's data was erased on request.",
        "de": "Die Daten des Kunden wurden auf Anfrage gelöscht.",
        "fr": "Les données du client ont été effacées à sa demande.",
        "es": "Los datos del cliente se borraron a petición suya.",
        "it": "I dati del cliente sono stati cancellati su richiesta.",
        "pt-BR": "Os dados do cliente foram apagados a pedido.",
        "ja": "顧客のデータは要請により消去されました。",
        "zh-Hans": "客户数据已应要求删除。",
        "zh-Hant": "顧客資料已應要求刪除。",
        "ar": "حُذفت بيانات العميل بناءً على طلب.",
    },
    "no_consent": {
        "en": "The customer has not agreed to receive marketing emails.",
        "de": "Der Kunde hat dem Empfang von Marketing-E-Mails nicht zugestimmt.",
        "fr": "Le client n'a pas accepté de recevoir des e-mails marketing.",
        "es": "El cliente no ha aceptado recibir correos de marketing.",
        "it": "Il cliente non ha acconsentito a ricevere email di marketing.",
        "pt-BR": "O cliente não concordou em receber e-mails de marketing.",
        "ja": "顧客はマーケティングメールの受信に同意していません。",
        "zh-Hans": "客户未同意接收营销邮件。",
        "zh-Hant": "顧客未同意接收行銷電子郵件。",
        "ar": "لم يوافق العميل على تلقي رسائل تسويقية.",
    },
    "consent_withdrawn": {
        "en": "The customer withdrew consent to marketing emails in Shopify.",
        "de": "Der Kunde hat die Zustimmung zu Marketing-E-Mails in Shopify widerrufen.",
        "fr": "Le client a retiré son consentement aux e-mails marketing dans Shopify.",
        "es": "El cliente retiró su consentimiento a los correos de marketing en Shopify.",
        "it": "Il cliente ha revocato il consenso alle email di marketing in Shopify.",
        "pt-BR": "O cliente retirou o consentimento para e-mails de marketing na Shopify.",
        "ja": "顧客がShopifyでマーケティングメールへの同意を取り消しました。",
        "zh-Hans": "客户已在 Shopify 中撤回营销邮件同意。",
        "zh-Hant": "顧客已在 Shopify 中撤回行銷電子郵件同意。",
        "ar": "سحب العميل موافقته على الرسائل التسويقية في Shopify.",
    },
    "suppressed": {
        "en": "The address unsubscribed or bounced.",
        "de": "Die Adresse hat sich abgemeldet oder ist unzustellbar.",
        "fr": "L'adresse s'est désabonnée ou est invalide.",
        "es": "La dirección se dio de baja o rebotó.",
        "it": "L'indirizzo si è disiscritto o è risultato non recapitabile.",
        "pt-BR": "O endereço cancelou a inscrição ou retornou.",
        "ja": "このアドレスは配信停止済みか、不達です。",
        "zh-Hans": "该地址已退订或退信。",
        "zh-Hant": "該地址已取消訂閱或退信。",
        "ar": "ألغى العنوان الاشتراك أو ارتدت الرسائل إليه.",
    },
    "unsubscribed": {
        "en": "The customer unsubscribed before this message was sent.",
        "de": "Der Kunde hat sich abgemeldet, bevor diese Nachricht gesendet wurde.",
        "fr": "Le client s'est désabonné avant l'envoi de ce message.",
        "es": "El cliente se dio de baja antes de que se enviara este mensaje.",
        "it": "Il cliente si è disiscritto prima dell'invio di questo messaggio.",
        "pt-BR": "O cliente cancelou a inscrição antes do envio desta mensagem.",
        "ja": "このメッセージの送信前に顧客が配信停止しました。",
        "zh-Hans": "客户在此消息发送前已退订。",
        "zh-Hant": "顧客在此訊息傳送前已取消訂閱。",
        "ar": "ألغى العميل الاشتراك قبل إرسال هذه الرسالة.",
    },
    ORDER_CANCELLED: {
        "en": "The order was cancelled, refunded or returned.",
        "de": "Die Bestellung wurde storniert, erstattet oder zurückgesendet.",
        "fr": "La commande a été annulée, remboursée ou retournée.",
        "es": "El pedido se canceló, reembolsó o devolvió.",
        "it": "L'ordine è stato annullato, rimborsato o reso.",
        "pt-BR": "O pedido foi cancelado, reembolsado ou devolvido.",
        "ja": "注文はキャンセル、返金、または返品されました。",
        "zh-Hans": "订单已取消、退款或退货。",
        "zh-Hant": "訂單已取消、退款或退貨。",
        "ar": "أُلغي الطلب أو استُرد مبلغه أو أُرجع.",
    },
    ORDER_REFUNDED: {
        "en": "The order was refunded.",
        "de": "Die Bestellung wurde erstattet.",
        "fr": "La commande a été remboursée.",
        "es": "El pedido fue reembolsado.",
        "it": "L'ordine è stato rimborsato.",
        "pt-BR": "O pedido foi reembolsado.",
        "ja": "注文は返金されました。",
        "zh-Hans": "订单已退款。",
        "zh-Hant": "訂單已退款。",
        "ar": "استُرد مبلغ الطلب.",
    },
    ORDER_RETURNED: {
        "en": "The order was returned.",
        "de": "Die Bestellung wurde zurückgesendet.",
        "fr": "La commande a été retournée.",
        "es": "El pedido fue devuelto.",
        "it": "L'ordine è stato reso.",
        "pt-BR": "O pedido foi devolvido.",
        "ja": "注文は返品されました。",
        "zh-Hans": "订单已退货。",
        "zh-Hant": "訂單已退貨。",
        "ar": "أُرجع الطلب.",
    },
    "order_deleted": {
        "en": "The order was deleted in Shopify.",
        "de": "Die Bestellung wurde in Shopify gelöscht.",
        "fr": "La commande a été supprimée dans Shopify.",
        "es": "El pedido se eliminó en Shopify.",
        "it": "L'ordine è stato eliminato in Shopify.",
        "pt-BR": "O pedido foi excluído na Shopify.",
        "ja": "注文はShopifyで削除されました。",
        "zh-Hans": "订单已在 Shopify 中删除。",
        "zh-Hant": "訂單已在 Shopify 中刪除。",
        "ar": "حُذف الطلب في Shopify.",
    },
    "product_deleted": {
        "en": "The product was deleted in Shopify.",
        "de": "Das Produkt wurde in Shopify gelöscht.",
        "fr": "Le produit a été supprimé dans Shopify.",
        "es": "El producto se eliminó en Shopify.",
        "it": "Il prodotto è stato eliminato in Shopify.",
        "pt-BR": "O produto foi excluído na Shopify.",
        "ja": "商品はShopifyで削除されました。",
        "zh-Hans": "商品已在 Shopify 中删除。",
        "zh-Hant": "商品已在 Shopify 中刪除。",
        "ar": "حُذف المنتج في Shopify.",
    },
    "customer_deleted": {
        "en": "The customer was deleted in Shopify.",
        "de": "Der Kunde wurde in Shopify gelöscht.",
        "fr": "Le client a été supprimé dans Shopify.",
        "es": "El cliente se eliminó en Shopify.",
        "it": "Il cliente è stato eliminato in Shopify.",
        "pt-BR": "O cliente foi excluído na Shopify.",
        "ja": "顧客はShopifyで削除されました。",
        "zh-Hans": "客户已在 Shopify 中删除。",
        "zh-Hant": "顧客已在 Shopify 中刪除。",
        "ar": "حُذف العميل في Shopify.",
    },
    "open_complaint": {
        "en": "The customer has an open complaint; the message waits until it is resolved.",
        "de": "Der Kunde hat eine offene Beschwerde; die Nachricht wartet, bis sie gelöst ist.",
        "fr": "Le client a une réclamation ouverte ; le message attend sa résolution.",
        "es": "El cliente tiene una queja abierta; el mensaje espera a que se resuelva.",
        "it": "Il cliente ha un reclamo aperto; il messaggio attende la sua risoluzione.",
        "pt-BR": "O cliente tem uma reclamação aberta; a mensagem aguarda a resolução.",
        "ja": "顧客に未解決の苦情があるため、解決までメッセージは待機します。",
        "zh-Hans": "客户有未解决的投诉；消息将在解决后发送。",
        "zh-Hant": "顧客有未解決的投訴；訊息將在解決後傳送。",
        "ar": "لدى العميل شكوى مفتوحة؛ تنتظر الرسالة حتى تُحل.",
    },
    "open_delivery_problem": {
        "en": "The customer's delivery has an open problem; the message waits until it is resolved.",
        "de": "Die Lieferung des Kunden hat ein offenes Problem; die Nachricht wartet, bis es gelöst ist.",
        "fr": "La livraison du client a un problème ouvert ; le message attend sa résolution.",
        "es": "La entrega del cliente tiene un problema abierto; el mensaje espera a que se resuelva.",
        "it": "La consegna del cliente ha un problema aperto; il messaggio attende la sua risoluzione.",
        "pt-BR": "A entrega do cliente tem um problema em aberto; a mensagem aguarda a resolução.",
        "ja": "顧客の配送に未解決の問題があるため、解決までメッセージは待機します。",
        "zh-Hans": "客户的配送有未解决的问题；消息将在解决后发送。",
        "zh-Hant": "顧客的配送有未解決的問題；訊息將在解決後傳送。",
        "ar": "في توصيل طلب العميل مشكلة مفتوحة؛ تنتظر الرسالة حتى تُحل.",
    },
    "duplicate": {
        "en": "The same message was already sent.",
        "de": "Dieselbe Nachricht wurde bereits gesendet.",
        "fr": "Le même message a déjà été envoyé.",
        "es": "El mismo mensaje ya se envió.",
        "it": "Lo stesso messaggio è già stato inviato.",
        "pt-BR": "A mesma mensagem já foi enviada.",
        "ja": "同じメッセージはすでに送信済みです。",
        "zh-Hans": "相同的消息已发送过。",
        "zh-Hant": "相同的訊息已傳送過。",
        "ar": "أُرسلت الرسالة نفسها من قبل.",
    },
    "frequency_cap": {
        "en": "The customer already received the maximum number of marketing emails this week.",
        "de": "Der Kunde hat diese Woche bereits die Höchstzahl an Marketing-E-Mails erhalten.",
        "fr": "Le client a déjà reçu le nombre maximal d'e-mails marketing cette semaine.",
        "es": "El cliente ya recibió el máximo de correos de marketing esta semana.",
        "it": "Il cliente ha già ricevuto il numero massimo di email di marketing questa settimana.",
        "pt-BR": "O cliente já recebeu o número máximo de e-mails de marketing nesta semana.",
        "ja": "顧客は今週すでに上限数のマーケティングメールを受信しています。",
        "zh-Hans": "客户本周已收到营销邮件的上限数量。",
        "zh-Hant": "顧客本週已收到行銷電子郵件的上限數量。",
        "ar": "تلقى العميل الحد الأقصى من الرسائل التسويقية هذا الأسبوع.",
    },
    "outside_window": {
        "en": "Outside the send window in the customer's local time; moved to the next window.",
        "de": "Außerhalb des Sendefensters in der Ortszeit des Kunden; ins nächste Fenster verschoben.",
        "fr": "Hors de la plage d'envoi à l'heure locale du client ; reporté à la plage suivante.",
        "es": "Fuera de la franja de envío en la hora local del cliente; pasa a la siguiente franja.",
        "it": "Fuori dalla fascia d'invio nell'ora locale del cliente; spostato alla fascia successiva.",
        "pt-BR": "Fora da janela de envio no horário local do cliente; movido para a próxima janela.",
        "ja": "顧客の現地時間で送信時間帯外のため、次の時間帯に移動しました。",
        "zh-Hans": "不在客户当地时间的发送时段内；已移至下一个时段。",
        "zh-Hant": "不在顧客當地時間的傳送時段內；已移至下一個時段。",
        "ar": "خارج نافذة الإرسال بالتوقيت المحلي للعميل؛ نُقلت إلى النافذة التالية.",
    },
    "holiday": {
        "en": "A national holiday in the customer's country; moved to the next working day.",
        "de": "Ein Feiertag im Land des Kunden; auf den nächsten Werktag verschoben.",
        "fr": "Jour férié dans le pays du client ; reporté au prochain jour ouvré.",
        "es": "Festivo nacional en el país del cliente; pasa al siguiente día laborable.",
        "it": "Festività nazionale nel paese del cliente; spostato al giorno lavorativo successivo.",
        "pt-BR": "Feriado nacional no país do cliente; movido para o próximo dia útil.",
        "ja": "顧客の国の祝日のため、翌営業日に移動しました。",
        "zh-Hans": "客户所在国家的法定节假日；已移至下一个工作日。",
        "zh-Hant": "顧客所在國家的國定假日；已移至下一個工作日。",
        "ar": "عطلة وطنية في بلد العميل؛ نُقلت إلى يوم العمل التالي.",
    },
    "ramadan_daytime": {
        "en": "Ramadan daytime: promotions are sent after sunset.",
        "de": "Ramadan tagsüber: Werbung wird nach Sonnenuntergang gesendet.",
        "fr": "Journée de Ramadan : les promotions partent après le coucher du soleil.",
        "es": "Horas diurnas de Ramadán: las promociones se envían tras la puesta de sol.",
        "it": "Ore diurne del Ramadan: le promozioni partono dopo il tramonto.",
        "pt-BR": "Durante o dia no Ramadã: promoções são enviadas após o pôr do sol.",
        "ja": "ラマダンの日中のため、プロモーションは日没後に送信します。",
        "zh-Hans": "斋月白天：促销信息在日落后发送。",
        "zh-Hant": "齋戒月白天：促銷訊息在日落後傳送。",
        "ar": "نهار رمضان: تُرسل العروض بعد غروب الشمس.",
    },
    "template_error": {
        "en": "The template could not be rendered.",
        "de": "Die Vorlage konnte nicht dargestellt werden.",
        "fr": "Le modèle n'a pas pu être généré.",
        "es": "No se pudo generar la plantilla.",
        "it": "Non è stato possibile generare il modello.",
        "pt-BR": "Não foi possível gerar o modelo.",
        "ja": "テンプレートを表示できませんでした。",
        "zh-Hans": "无法渲染模板。",
        "zh-Hant": "無法轉譯範本。",
        "ar": "تعذّر إنشاء القالب.",
    },
    BOUNCED: {
        "en": "The address bounced for good (a hard bounce came back), so nothing more is sent to it.",
        "de": "Die Adresse ist dauerhaft unzustellbar (Hard Bounce); es wird nichts mehr an sie gesendet.",
        "fr": "L'adresse est définitivement injoignable (rebond permanent) : plus rien ne lui est envoyé.",
        "es": "La dirección rebotó de forma permanente (rebote duro); no se le envía nada más.",
        "it": "L'indirizzo è definitivamente irraggiungibile (hard bounce); non gli viene inviato altro.",
        "pt-BR": "O endereço foi rejeitado de forma permanente (hard bounce); nada mais é enviado a ele.",
        "ja": "このアドレスは恒久的に配信できない（ハードバウンス）ため、今後は送信しません。",
        "zh-Hans": "该地址已永久退信（硬退信），不再向其发送任何邮件。",
        "zh-Hant": "該地址已永久退信（硬退信），不再向其傳送任何郵件。",
        "ar": "ارتدّ البريد إلى هذا العنوان نهائيًا (ارتداد دائم)، لذا لا يُرسل إليه شيء بعد الآن.",
    },
    COMPLAINED: {
        "en": "The recipient marked one of our emails as spam, so nothing more is sent to the address.",
        "de": ("Der Empfänger hat eine unserer E-Mails als Spam markiert; "
               "es wird nichts mehr an die Adresse gesendet."),
        "fr": "Le destinataire a signalé un de nos e-mails comme spam : plus rien n'est envoyé à l'adresse.",
        "es": "El destinatario marcó uno de nuestros correos como spam; no se envía nada más a la dirección.",
        "it": "Il destinatario ha segnalato una nostra email come spam; non viene inviato altro all'indirizzo.",
        "pt-BR": "O destinatário marcou um de nossos e-mails como spam; nada mais é enviado ao endereço.",
        "ja": "受信者が当社のメールを迷惑メールとして報告したため、このアドレスには今後送信しません。",
        "zh-Hans": "收件人将我们的一封邮件标记为垃圾邮件，不再向该地址发送任何邮件。",
        "zh-Hant": "收件人將我們的一封郵件標記為垃圾郵件，不再向該地址傳送任何郵件。",
        "ar": "وضع المستلم إحدى رسائلنا في البريد العشوائي، لذا لا يُرسل شيء إلى العنوان بعد الآن.",
    },
    HOLDOUT: {
        "en": "Held out on purpose (holdout group), so the flow's report can show its lift.",
        "de": "Absichtlich zurückgehalten (Kontrollgruppe), damit der Bericht die Wirkung zeigen kann.",
        "fr": "Écarté volontairement (groupe témoin) pour que le rapport montre l'effet du scénario.",
        "es": "Excluido a propósito (grupo de control) para que el informe muestre el efecto del flujo.",
        "it": "Escluso di proposito (gruppo di controllo) perché il report mostri l'effetto del flusso.",
        "pt-BR": "Retido de propósito (grupo de controle) para o relatório mostrar o efeito do fluxo.",
        "ja": "効果を測るため意図的に除外しました（ホールドアウト群）。",
        "zh-Hans": "按设定留作对照组，以便报告显示该流程的效果。",
        "zh-Hant": "依設定保留為對照組，以便報告顯示該流程的成效。",
        "ar": "استُبعد عمدًا (مجموعة ضابطة) ليُظهر التقرير أثر التدفق.",
    },
    ALREADY_REORDERED: {
        "en": "The customer reordered the product before the reminder was due.",
        "de": "Der Kunde hat das Produkt vor der Erinnerung erneut bestellt.",
        "fr": "Le client a recommandé le produit avant le rappel.",
        "es": "El cliente volvió a pedir el producto antes del recordatorio.",
        "it": "Il cliente ha riordinato il prodotto prima del promemoria.",
        "pt-BR": "O cliente recomprou o produto antes do lembrete.",
        "ja": "リマインダーの前に顧客が商品を再注文しました。",
        "zh-Hans": "客户在提醒前已再次购买该商品。",
        "zh-Hant": "顧客在提醒前已再次購買該商品。",
        "ar": "أعاد العميل طلب المنتج قبل موعد التذكير.",
    },
    ORDERED_AGAIN: {
        "en": "The customer ordered again, so the win-back was no longer needed.",
        "de": "Der Kunde hat wieder bestellt, die Rückgewinnung war nicht mehr nötig.",
        "fr": "Le client a recommandé : la relance de reconquête n'était plus utile.",
        "es": "El cliente volvió a comprar, así que la recuperación ya no hacía falta.",
        "it": "Il cliente ha ordinato di nuovo: il messaggio di riconquista non serviva più.",
        "pt-BR": "O cliente comprou de novo, então a reconquista não era mais necessária.",
        "ja": "顧客が再び注文したため、休眠復帰メールは不要になりました。",
        "zh-Hans": "客户已再次下单，无需再发送召回邮件。",
        "zh-Hant": "顧客已再次下單，無需再傳送喚回郵件。",
        "ar": "طلب العميل مجددًا، فلم تعد رسالة الاستعادة لازمة.",
    },
    ACTIVE_SUBSCRIPTION: {
        "en": "The customer has an active subscription for the product.",
        "de": "Der Kunde hat ein aktives Abonnement für das Produkt.",
        "fr": "Le client a un abonnement actif pour ce produit.",
        "es": "El cliente tiene una suscripción activa al producto.",
        "it": "Il cliente ha un abbonamento attivo per il prodotto.",
        "pt-BR": "O cliente tem uma assinatura ativa do produto.",
        "ja": "顧客はこの商品の定期購入を利用中です。",
        "zh-Hans": "客户已订阅该商品。",
        "zh-Hant": "顧客已訂閱該商品。",
        "ar": "لدى العميل اشتراك فعّال في المنتج.",
    },
    "not_offered": {
        "en": "Amazon did not offer a review request for this order inside its window.",
        "de": "Amazon hat für diese Bestellung im Zeitfenster keine Bewertungsanfrage angeboten.",
        "fr": "Amazon n'a pas proposé de demande d'avis pour cette commande dans sa fenêtre.",
        "es": "Amazon no ofreció la solicitud de reseña de este pedido dentro de su plazo.",
        "it": "Amazon non ha offerto la richiesta di recensione per questo ordine nella sua finestra.",
        "pt-BR": "A Amazon não ofereceu a solicitação de avaliação deste pedido dentro da janela.",
        "ja": "Amazonが期間内にこの注文のレビュー依頼を提供しませんでした。",
        "zh-Hans": "亚马逊在窗口期内未对此订单提供评价请求。",
        "zh-Hant": "亞馬遜在期間內未對此訂單提供評論請求。",
        "ar": "لم تتح أمازون طلب المراجعة لهذا الطلب ضمن المهلة.",
    },
    "window_closed": {
        "en": "Amazon's solicitation window for this order has closed.",
        "de": "Amazons Zeitfenster für Bewertungsanfragen zu dieser Bestellung ist geschlossen.",
        "fr": "La fenêtre de sollicitation d'Amazon pour cette commande est fermée.",
        "es": "El plazo de solicitud de Amazon para este pedido ha terminado.",
        "it": "La finestra di richiesta di Amazon per questo ordine è chiusa.",
        "pt-BR": "A janela de solicitação da Amazon para este pedido foi encerrada.",
        "ja": "この注文に対するAmazonの依頼可能期間は終了しました。",
        "zh-Hans": "亚马逊对此订单的请求窗口期已结束。",
        "zh-Hant": "亞馬遜對此訂單的請求期間已結束。",
        "ar": "انتهت مهلة أمازون لطلب المراجعة لهذا الطلب.",
    },
    "estimated_window_closed": {
        "en": ("Amazon gave no delivery window for this order; it was asked every day of the estimated window "
               "(latest ship date + transit + 5 to 30 days) and never offered a review request."),
        "de": ("Amazon hat für diese Bestellung kein Lieferfenster angegeben; es wurde an jedem Tag des geschätzten "
               "Zeitfensters gefragt und hat nie eine Bewertungsanfrage angeboten."),
        "fr": ("Amazon n'a donné aucune fenêtre de livraison pour cette commande ; elle a été interrogée chaque jour "
               "de la fenêtre estimée et n'a jamais proposé de demande d'avis."),
        "es": ("Amazon no dio plazo de entrega para este pedido; se le preguntó cada día del plazo estimado y nunca "
               "ofreció la solicitud de reseña."),
        "it": ("Amazon non ha indicato una finestra di consegna per questo ordine; è stata interrogata ogni giorno "
               "della finestra stimata e non ha mai offerto la richiesta di recensione."),
        "pt-BR": ("A Amazon não informou janela de entrega para este pedido; foi consultada todos os dias da janela "
                  "estimada e nunca ofereceu a solicitação de avaliação."),
        "ja": ("Amazonがこの注文の配送期間を示さなかったため、推定期間中毎日確認しましたが、"
               "レビュー依頼は一度も提供されませんでした。"),
        "zh-Hans": "亚马逊未提供此订单的送达时间窗；在估计的窗口期内每天询问，亚马逊始终未提供评价请求。",
        "zh-Hant": "亞馬遜未提供此訂單的送達期間；在估計的期間內每天詢問，亞馬遜始終未提供評論請求。",
        "ar": "لم تحدد أمازون مهلة تسليم لهذا الطلب؛ سُئلت كل يوم خلال المهلة المقدّرة ولم تتح طلب المراجعة قط.",
    },
    "window_not_open": {
        "en": "Amazon's solicitation window for this order has not opened yet; it waits.",
        "de": 'Amazons Zeitfenster für diese Bestellung ist noch nicht offen; die Anfrage wartet.',
        "fr": "La fenêtre de sollicitation d'Amazon pour cette commande n'est pas encore ouverte ; la demande attend.",
        "es": 'El plazo de solicitud de Amazon para este pedido aún no se ha abierto; la solicitud espera.',
        "it": 'La finestra di richiesta di Amazon per questo ordine non è ancora aperta; la richiesta attende.',
        "pt-BR": 'A janela de solicitação da Amazon para este pedido ainda não abriu; a solicitação aguarda.',
        "ja": 'この注文に対するAmazonの依頼可能期間はまだ始まっていないため、待機しています。',
        "zh-Hans": '亚马逊对此订单的请求窗口期尚未开始，正在等待。',
        "zh-Hant": '亞馬遜對此訂單的請求期間尚未開始，正在等待。',
        "ar": 'لم تبدأ مهلة أمازون لطلب المراجعة لهذا الطلب بعد؛ الطلب ينتظر.',
    },
    "no_delivery_date": {
        "en": 'Amazon gave no delivery date for this order, so its solicitation window is unknown.',
        "de": 'Amazon hat für diese Bestellung kein Lieferdatum angegeben; das Zeitfenster ist unbekannt.',
        "fr": "Amazon n'a donné aucune date de livraison pour cette commande : sa fenêtre est inconnue.",
        "es": 'Amazon no dio fecha de entrega para este pedido, así que se desconoce su plazo.',
        "it": 'Amazon non ha fornito una data di consegna per questo ordine, quindi la finestra è sconosciuta.',
        "pt-BR": 'A Amazon não informou data de entrega para este pedido, então a janela é desconhecida.',
        "ja": 'Amazonがこの注文の配送日を示していないため、依頼可能期間が不明です。',
        "zh-Hans": '亚马逊未提供此订单的送达日期，因此请求窗口期未知。',
        "zh-Hant": '亞馬遜未提供此訂單的送達日期，因此請求期間不明。',
        "ar": 'لم تحدد أمازون تاريخ تسليم لهذا الطلب، لذا مهلة الطلب غير معروفة.',
    },
    "throttled": {
        "en": 'Amazon asked us to slow down; the request waits for the next run.',
        "de": 'Amazon hat um weniger Anfragen gebeten; die Anfrage wartet auf den nächsten Lauf.',
        "fr": 'Amazon a demandé de ralentir : la demande attend le prochain passage.',
        "es": 'Amazon pidió reducir el ritmo; la solicitud espera a la próxima ejecución.',
        "it": 'Amazon ha chiesto di rallentare; la richiesta attende il prossimo giro.',
        "pt-BR": 'A Amazon pediu para reduzir o ritmo; a solicitação aguarda a próxima execução.',
        "ja": 'Amazonからリクエストを減らすよう求められたため、次回の実行を待っています。',
        "zh-Hans": '亚马逊要求降低请求频率，请求将在下次运行时处理。',
        "zh-Hant": '亞馬遜要求降低請求頻率，請求將在下次執行時處理。',
        "ar": 'طلبت أمازون إبطاء الطلبات؛ ينتظر الطلب التشغيل التالي.',
    },
    "amazon_unavailable": {
        "en": 'Amazon did not answer; the request is tried again later.',
        "de": 'Amazon hat nicht geantwortet; die Anfrage wird später erneut versucht.',
        "fr": "Amazon n'a pas répondu : la demande sera réessayée plus tard.",
        "es": 'Amazon no respondió; la solicitud se reintentará más tarde.',
        "it": 'Amazon non ha risposto; la richiesta verrà ritentata più tardi.',
        "pt-BR": 'A Amazon não respondeu; a solicitação será tentada novamente mais tarde.',
        "ja": 'Amazonから応答がなかったため、後で再試行します。',
        "zh-Hans": '亚马逊未响应，稍后将重试。',
        "zh-Hant": '亞馬遜未回應，稍後將重試。',
        "ar": 'لم تستجب أمازون؛ سيُعاد المحاولة لاحقًا.',
    },
    "amazon_not_authorized": {
        "en": "Amazon refused the seller's authorization; reconnect the account in Settings.",
        "de": ("Amazon hat die Autorisierung des Verkäufers abgelehnt; "
               "verbinden Sie das Konto in den Einstellungen neu."),
        "fr": "Amazon a refusé l'autorisation du vendeur : reconnectez le compte dans les réglages.",
        "es": 'Amazon rechazó la autorización del vendedor; vuelva a conectar la cuenta en Ajustes.',
        "it": "Amazon ha rifiutato l'autorizzazione del venditore; ricollega l'account nelle Impostazioni.",
        "pt-BR": 'A Amazon recusou a autorização do vendedor; reconecte a conta em Configurações.',
        "ja": 'Amazonが出品者の認可を拒否しました。設定でアカウントを再接続してください。',
        "zh-Hans": '亚马逊拒绝了卖家授权，请在设置中重新连接账户。',
        "zh-Hant": '亞馬遜拒絕了賣家授權，請在設定中重新連結帳戶。',
        "ar": 'رفضت أمازون تفويض البائع؛ أعد ربط الحساب من الإعدادات.',
    },
    "delivery_unknown": {
        "en": ("An interrupted request may or may not have reached Amazon "
               "before its window closed; it is not counted as sent."),
        "de": ("Eine unterbrochene Anfrage hat Amazon vor Ende des Zeitfensters "
               "vielleicht erreicht; sie gilt nicht als gesendet."),
        "fr": ("Une demande interrompue a peut-être atteint Amazon avant la "
               "fin de sa fenêtre ; elle n'est pas comptée comme envoyée."),
        "es": ("Una solicitud interrumpida pudo o no llegar a Amazon "
               "antes del fin del plazo; no se cuenta como enviada."),
        "it": ("Una richiesta interrotta potrebbe aver raggiunto Amazon prima "
               "della chiusura della finestra; non è contata come inviata."),
        "pt-BR": ("Uma solicitação interrompida pode ter chegado à Amazon "
                  "antes do fim da janela; não é contada como enviada."),
        "ja": '中断された依頼が期間終了前にAmazonに届いたか不明なため、送信済みには数えません。',
        "zh-Hans": '中断的请求可能未在窗口期结束前到达亚马逊，不计为已发送。',
        "zh-Hant": '中斷的請求可能未在期間結束前送達亞馬遜，不計為已傳送。',
        "ar": 'ربما وصل طلب متقطع إلى أمازون قبل انتهاء المهلة وربما لا؛ لا يُحسب مُرسلًا.',
    },
    "store_reinstall_needed": {
        "en": "Shopify revoked the app's access; the merchant must reinstall it before anything is sent.",
        "de": 'Shopify hat den Zugriff der App widerrufen; vor dem Versand muss sie neu installiert werden.',
        "fr": "Shopify a révoqué l'accès de l'application : elle doit être réinstallée avant tout envoi.",
        "es": 'Shopify revocó el acceso de la aplicación; hay que reinstalarla antes de enviar nada.',
        "it": "Shopify ha revocato l'accesso dell'app; va reinstallata prima di inviare qualcosa.",
        "pt-BR": 'O Shopify revogou o acesso do app; é preciso reinstalá-lo antes de enviar algo.',
        "ja": 'Shopifyがアプリのアクセスを取り消したため、再インストールするまで送信しません。',
        "zh-Hans": 'Shopify 已撤销本应用的访问权限，重新安装前不发送任何消息。',
        "zh-Hant": 'Shopify 已撤銷本應用程式的存取權，重新安裝前不傳送任何訊息。',
        "ar": 'ألغت Shopify وصول التطبيق؛ يجب إعادة تثبيته قبل إرسال أي شيء.',
    },
    "already_solicited": {
        "en": "Amazon says a review request for this order was already sent.",
        "de": "Laut Amazon wurde für diese Bestellung bereits eine Bewertungsanfrage gesendet.",
        "fr": "Selon Amazon, une demande d'avis a déjà été envoyée pour cette commande.",
        "es": "Según Amazon, ya se envió una solicitud de reseña para este pedido.",
        "it": "Secondo Amazon una richiesta di recensione per questo ordine è già stata inviata.",
        "pt-BR": "Segundo a Amazon, uma solicitação de avaliação deste pedido já foi enviada.",
        "ja": "Amazonによると、この注文のレビュー依頼は送信済みです。",
        "zh-Hans": "亚马逊表示此订单的评价请求已发送过。",
        "zh-Hant": "亞馬遜表示此訂單的評論請求已傳送過。",
        "ar": "تقول أمازون إن طلب المراجعة لهذا الطلب أُرسل من قبل.",
    },
}

# Causes that never go away: a skip with one of these is never resent.
PERMANENT = frozenset({"channel_not_allowed", "customer_redacted", ORDER_CANCELLED, ORDER_REFUNDED, ORDER_RETURNED,
                       "order_deleted", "product_deleted", "customer_deleted", "duplicate", ALREADY_REORDERED,
                       ORDERED_AGAIN, ACTIVE_SUBSCRIPTION, "not_offered", "window_closed", "estimated_window_closed",
                       "delivery_unknown", "no_delivery_date", "already_solicited"})
# Prose still written by writers outside the flows (plugin.auth.lifecycle, plugin.webhooks.compliance, the
# Amazon solicitation job) and by rows stored before the codes: read as their code.
ALIASES = {"store uninstalled": "store_uninstalled", "store reinstall needed": "store_reinstall_needed",
           "customer redacted": "customer_redacted",
           "order cancelled": ORDER_CANCELLED, "order refunded": ORDER_REFUNDED, "order returned": ORDER_RETURNED,
           "no contact access": NO_CONTACT_ACCESS, "already reordered": ALREADY_REORDERED,
           "active subscription": ACTIVE_SUBSCRIPTION, "no merchant address": NO_MERCHANT_ADDRESS,
           "order deleted": "order_deleted", "outside window": "window_closed",
           "not offered by Amazon in the window": "not_offered", "already solicited": "already_solicited"}
CODES = frozenset(LABELS)


def code_of(reason: str | None) -> str | None:
    """Return the code a stored reason stands for (codes as they are, known prose mapped to its code)."""
    if not reason:
        return None
    return ALIASES.get(reason, reason)


def label(reason: str | None, locale: str | None = None) -> str:
    """Return a reason's words for the merchant in ``locale`` (English when the locale is not shipped)."""
    code = code_of(reason)
    if not code:
        return ""
    words = LABELS.get(code)
    if words is None:
        return code.replace("_", " ").capitalize()
    return words.get(locales.normalize(locale) or locales.DEFAULT) or words[locales.DEFAULT]


def is_permanent(reason: str | None) -> bool:
    """Say whether a reason names a cause that never goes away (never resent)."""
    return code_of(reason) in PERMANENT


def english() -> dict[str, str]:
    """Return {code: English label} (the send policy's REASONS)."""
    return {code: words[locales.DEFAULT] for code, words in LABELS.items()}
